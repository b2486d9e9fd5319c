// The scrub: re-hashes the stored blobs, the least recently verified first
// (blob_scrub_next), at no more than scrub_bytes_per_second, so that a
// copy that rotted on disk is found and replaced from the peer
// (blob_corrupt queues it wanted again) before the other copy is needed.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

#include "crawler/agent/config.hpp"
#include "crawler/agent/pacer.hpp"
#include "crawler/agent/stopper.hpp"
#include "crawler/agent/sync_stats.hpp"

namespace crawler {
class FileStore;
}

namespace crawler::agent {

class NodeDb;

// The sha256 of a file read in 256 KiB pieces, sleeping through `stop` as
// `pacer` says; nullopt with `error` set when unreadable, or empty error
// when stopped.
std::optional<std::string> paced_sha256(const std::filesystem::path& file, Pacer& pacer, Stopper& stop,
                                        std::string* error, std::uint64_t* bytes);

// The verdict on one stored blob: empty when good, else the detail for
// blob_corrupt (missing, wrong size, wrong hash, unreadable). nullopt when
// stopped.
std::optional<std::string> check_blob(const FileStore& store, const std::string& sha256,
                                      std::uint64_t size, Pacer& pacer, Stopper& stop,
                                      std::uint64_t* bytes);

// The scrub thread's whole life: returns when stopped. Does nothing when
// scrub_bytes_per_second is 0.
void run_scrub(const AgentConfig& config, const FileStore& store, Stopper& stop, SyncStats& stats);

}  // namespace crawler::agent
