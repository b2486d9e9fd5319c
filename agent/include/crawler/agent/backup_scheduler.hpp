// The agent's backup schedule: on both data nodes the agent looks, every
// minute, whether a backup of its node's stanza is due and whether its node
// may make one (ha_backup_begin(): only the writable primary), and if both,
// runs `crawler-ha backup run` as a child process. So backups follow the
// primary through a failover with nothing to change, and the standby never
// starts one (docs/backup.md, "Scheduled by the agent").
#pragma once
#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "crawler/agent/config.hpp"
#include "crawler/agent/stopper.hpp"

namespace crawler::agent {

// How often each type of backup is wanted; zero disables that type.
struct BackupIntervals {
  std::chrono::seconds full{0}, diff{0}, incr{0};
};

// The type of backup due at `now` ("full", "diff", "incr"), or nothing,
// given when the newest usable backup of each type of the stanza started
// (nothing: none). A full one is due when there is none at all (a diff or
// incr needs one to build on; pgBackRest would make a full one anyway) or
// the newest is older than its interval; else a diff when the newest diff
// or full is older than the diff interval; else an incr when the newest
// backup of any type is older than the incr interval. A newer backup of a
// higher type restarts the clocks of the lower ones, as pgBackRest builds a
// diff on the last full and an incr on the last backup of any type. A
// disabled type is never due, except the first full; nothing is due when
// every type is disabled. A time in the future counts as just now.
std::optional<std::string> due_backup_type(std::chrono::system_clock::time_point now,
                                           std::optional<std::chrono::system_clock::time_point> newest_full,
                                           std::optional<std::chrono::system_clock::time_point> newest_diff,
                                           std::optional<std::chrono::system_clock::time_point> newest_incr,
                                           const BackupIntervals& intervals);

// How long the scheduler sleeps between two looks: a minute, or the
// smallest enabled interval when that is shorter (at least a second), so a
// short interval is kept to within its own length.
std::chrono::seconds backup_check_period(const BackupIntervals& intervals);

// The scheduler's thread. start() returns at once (nothing starts when
// backup_config is empty or every interval is 0); stop() ends a sleep at
// once, but waits for a backup in flight to end: a pgBackRest killed
// halfway leaves its lock and a partial backup behind for nothing.
class BackupScheduler {
 public:
  // `program`: the executable run as `program backup run ...` (the agent's
  // own, /proc/self/exe); `store_root`: the store used when backup_store is
  // empty.
  BackupScheduler(const AgentConfig& config, std::string program, std::string store_root);
  ~BackupScheduler();
  BackupScheduler(const BackupScheduler&) = delete;
  BackupScheduler& operator=(const BackupScheduler&) = delete;

  void start();
  void stop();

 private:
  void run();
  // Whether a restore test is due after a backup that just succeeded: the
  // last one (of this agent's life) is older than
  // backup_restore_test_interval_s, or there was none.
  bool restore_test_due(std::chrono::steady_clock::time_point now) const;
  // Runs `program backup test-restore` on the newest backup, waiting for it.
  void run_restore_test(const std::vector<std::string>& env);

  const AgentConfig& config_;
  std::string program_;
  std::string store_root_;
  Stopper stop_;
  std::thread thread_;
  std::optional<std::chrono::steady_clock::time_point> last_restore_test_;
};

}  // namespace crawler::agent
