// The identity of a blob store: a random UUID kept in <store>/.store-id.
// The node's database remembers which store its blob tables describe
// (blob_store_attach); a new disk or a wiped directory has another id (or
// none), and the agent then takes an inventory instead of trusting tables
// that describe bytes no longer there.
#pragma once
#include <filesystem>
#include <string>
#include <string_view>

namespace crawler::agent {

// Whether `id` is a store id blob_store_attach() accepts: 1 to 128 letters,
// digits, '_', '.', ':' or '-', starting with a letter or digit.
bool valid_store_id(std::string_view id);

// A random (version 4) UUID, lower case, from OpenSSL's generator.
std::string random_uuid();

// The store's id: read from <root>/.store-id (surrounding whitespace
// ignored), or a new random UUID written there durably (temporary file,
// fsync, rename, fsync of the directory) when the file is missing or holds
// no valid id (a warning: the new id costs an inventory, which is safe).
// Throws std::runtime_error when the file can be neither read nor written.
std::string load_or_create_store_id(const std::filesystem::path& root);

}  // namespace crawler::agent
