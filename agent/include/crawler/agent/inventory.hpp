// The inventory: what the store holds on disk, told to the node's database
// when its blob tables describe another store or none (a first start, a new
// disk, a wiped directory). Only names the store itself makes count:
// ab/cd/<64 hex>.<ext>, the directories matching the name's first four
// digits; temporary files (.tmp/), moved-aside corrupt copies (.corrupt/),
// symbolic links and anything else are left alone.
#pragma once
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace crawler::agent {

class NodeDb;
class Stopper;

struct StoredBlob {
  std::string sha256;
  std::string ext;
  std::uint64_t size = 0;
};

// Whether `ext` is a blob file's extension: 1 to 16 lower-case letters or
// digits (what the database's images.file_path allows).
bool valid_blob_ext(std::string_view ext);

// Whether `relative` (e.g. "ab/cd/<sha256>.png") is where the store keeps a
// blob; its sha256 and extension when it is. The database's file_path is
// checked with this before a fetched file is renamed there, so no value of
// it can point outside the store.
bool parse_blob_path(std::string_view relative, std::string* sha256, std::string* ext);

struct WalkFigures {
  std::uint64_t blobs = 0, bytes = 0, ignored = 0, duplicates = 0;
};

// Walks the store under `root`, handing blobs to `sink` in batches of at
// most `batch`; stops early when `sink` returns false (then false). A blob
// stored under two extensions is handed over once. `figures` counts.
bool walk_store(const std::filesystem::path& root, std::size_t batch,
                const std::function<bool(std::vector<StoredBlob>&)>& sink, WalkFigures* figures);

// Attaches the store to the node's database (blob_store_attach(store_id));
// when the tables describe another store, walks it and records it
// (blob_inventory in batches of `batch`, then blob_requeue_missing()).
// Retries from the start after a lost connection; false only when stopped.
bool attach_store(NodeDb& db, Stopper& stop, const std::filesystem::path& root,
                  const std::string& store_id, std::size_t batch = 5000);

}  // namespace crawler::agent
