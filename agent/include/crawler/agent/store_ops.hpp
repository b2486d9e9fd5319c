// The file operations file sync makes on the store beyond FileStore's own:
// putting a fetched file in place, moving a bad copy aside,
// removing an orphan durably. Each returns false with a reason rather than
// throwing: they run on file sync's threads.
#pragma once
#include <filesystem>
#include <string>

namespace crawler::agent {

// fsyncs a directory (after a rename into it or an unlink from it).
bool fsync_directory(const std::filesystem::path& dir);

// Makes the directory (ab/cd/) that <root>/<relative> goes in, and ab/
// before it, when missing: a mkdir per blob in the common case, nothing
// fsynced (the name that goes in it is made durable by a group sync).
// Transfer threads call it as soon as a blob is verified, so that the
// thread that renames a batch into place does not pay for a new store's
// directories one blob after another.
bool make_blob_directory(const std::filesystem::path& root, const std::filesystem::path& relative,
                         std::string* error);

// Renames the complete file `from` to <root>/<relative>, making ab/ and
// ab/cd/ when needed. Nothing is fsynced here: the caller has made `from`'s
// bytes durable before (a StoreSync wait), and makes the new name durable
// after, both in group syncs shared with the other writers.
bool install_file(const std::filesystem::path& from, const std::filesystem::path& root,
                  const std::filesystem::path& relative, std::string* error);

// Moves a bad copy out of the store's names, to
// <root>/.corrupt/<file name>.<UTC timestamp>, kept for an operator to look
// at. Returns where it went, or empty (error set) when it could not.
std::filesystem::path move_aside(const std::filesystem::path& root, const std::filesystem::path& file,
                                 std::string* error);

// Unlinks `file` and fsyncs its directory; true also when it was gone.
bool remove_durably(const std::filesystem::path& file, std::string* error);

}  // namespace crawler::agent
