// Which backup `crawler-ha restore` restores (docs/backup.md, "Restore"):
// every node backs up into its own stanza of the same repository, and each
// backup is annotated with the node and its term. Pure; unit-tested in
// agent/tests/restore_plan_test.cpp.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "crawler/agent/pgbackrest.hpp"

namespace crawler::agent {

// What to restore to.
struct RestoreTarget {
  enum class Kind { latest, time, set };
  Kind kind = Kind::latest;
  std::int64_t time = 0;  // Kind::time: Unix seconds
  std::string label;      // Kind::set: a backup label
};

// The backup a restore starts from, and the reason in words.
struct RestoreChoice {
  std::string stanza;
  BackupInfo backup;
  std::string why;
};

// Chooses the stanza and backup set. `stanzas`: each stanza's info;
// `only_stanza`: "" to choose among all of them, else that one only.
// The candidates of a stanza are its backups without checksum errors that
// can reach the target: for a time, those that ended before it (a restore
// cannot stop inside a backup); for a label, that backup; for the latest,
// any. Per stanza the newest candidate; across stanzas the one made in the
// highest term (the node that was primary last, whose WAL holds what its
// clients wrote), then the newest, then the name. nullopt with *error
// saying why when there is none (or a label two stanzas share).
std::optional<RestoreChoice> choose_restore(const std::map<std::string, StanzaInfo>& stanzas,
                                            const std::string& only_stanza, const RestoreTarget& target,
                                            std::string* error);

// "2026-12-06 04:25:14+00" (UTC) for a Unix time: the form restore prints
// and pgBackRest's --target accepts.
std::string utc_text(std::int64_t unix_seconds);
// A point in time as given to --time.
struct TimePoint {
  std::int64_t seconds = 0;  // Unix seconds
  std::string fraction;      // "" or ".123456" (the digits given)
  // For pgBackRest's --target (recovery_target_time): UTC, with the zone
  // written out, so the server's own timezone setting does not matter.
  std::string target_text() const;
};
// Parses "YYYY-MM-DD HH:MM:SS[.ffffff]" (or a "T" between date and time)
// with an optional zone "Z", "+HH", "+HHMM", "+HH:MM" or "-..." (none:
// UTC); nullopt when malformed or out of range.
std::optional<TimePoint> parse_time_text(const std::string& text);

}  // namespace crawler::agent
