// What `crawler-worker export` writes, without the database or the disk:
// an image row as a JSON object and as a CSV record, the webdataset's shard
// and sample names (img2dataset's), a shard's statistics and the progress
// line. Pure: unit-tested on rows made by hand.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "crawler/db_call.hpp"

namespace crawler {

// A column of the images table as exported: its name, and whether its
// value is a number in JSON, or a JSON document itself (thumbnails: an
// object in JSON, its text in CSV); the others are text.
struct ExportColumn {
  const char* name;
  bool number;
  bool json = false;
};

// Every column of an image row, in the order of the CSV header and of each
// JSON object (the order the images table and image_list() give them, the
// filename last). The database's statement "image_page" names each one: a
// column added to the table is added to both.
const std::vector<ExportColumn>& export_columns();

// `text` as valid UTF-8: every byte that does not start or continue a
// valid sequence (overlong forms and surrogates included) and every NUL
// byte becomes U+FFFD. PostgreSQL's text never holds either; what the
// exports write must stay readable whatever a row holds.
std::string utf8_or_replaced(std::string_view text);

// One CSV field as RFC 4180 writes it: quoted when it holds a comma, a
// double quote, CR or LF (or starts or ends with a space, which some
// readers trim), its quotes doubled; valid UTF-8 (utf8_or_replaced()).
// NULL is the empty field, unquoted; the empty string is "" (quoted), so a
// reader can tell them apart.
std::string csv_field(const Param& value);
// The header record: the column names, comma-separated, CRLF-terminated.
std::string csv_header();
// One record: the row's values in export_columns() order, CRLF-terminated
// (RFC 4180's line break). Columns are read by name; a column the answer
// lacks is NULL.
std::string csv_record(const DbResult& page, std::size_t row);

// The row as one JSON object, keys in export_columns() order: numbers as
// JSON numbers (text that is not an integer stays text), JSON columns as
// their document (text that does not parse stays text), NULL as null, text
// as strings. Serialise it with json_text() (invalid UTF-8 replaced).
nlohmann::ordered_json image_json(const DbResult& page, std::size_t row);

// The webdataset's names, as img2dataset writes them. A shard holds
// `shard_size` consecutive rows of the session (a skipped image leaves its
// key unused, as a failed download does in img2dataset); the sample key is
// shard * 10^d + index in the shard, zero-padded to 5 + d digits, d being
// the digits an index needs (the smallest d with 10^d >= shard_size): with
// the default 10,000 per shard it is the running index in 9 digits
// (000000123), and the shard of row n is n / shard_size.
struct ShardNaming {
  explicit ShardNaming(std::int64_t shard_size);
  std::int64_t shard_size;
  int index_digits;  // d above
  // "00000", "00001", ...: the shard's files are NAME.tar and NAME_stats.json.
  std::string shard_name(std::int64_t shard) const;
  // The key of the `index`th row of the session (from 0).
  std::string key(std::int64_t index) const;
  std::int64_t shard_of(std::int64_t index) const { return index / shard_size; }
};

// The extension of an image's file inside a shard: the store's (file_path
// ends .<ext>), in lower case, letters and digits only; else the row's
// format; else "bin".
std::string sample_extension(const std::string& file_path, const Param& format);

// An image left out of a shard, and why.
struct SkippedImage {
  std::string id, url, sha256, error;
};

// What one shard (or the whole export) holds, as its _stats.json says:
// img2dataset's count, successes and failed_to_download (here: images
// whose bytes could not be read or did not match their sha256), duration,
// start and end times (Unix seconds), and ours: bytes of images, each
// failure with its reason.
struct ExportStats {
  std::int64_t count = 0, successes = 0, bytes = 0;
  double start_time = 0, end_time = 0;
  std::vector<SkippedImage> failures;
  nlohmann::ordered_json to_json() const;
};

// The live line: rows exported of the total counted at the start (the
// percentage only while within it: rows added to a running session go
// past it), the rate since the start, bytes written, skipped images, and
// the time left at that rate.
std::string export_progress_line(std::int64_t rows, std::int64_t total, std::int64_t bytes, std::int64_t skipped,
                                 double seconds);

}  // namespace crawler
