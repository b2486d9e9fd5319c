#include "crawler/export_format.hpp"

#include <cctype>
#include <charconv>
#include <cstdio>
#include <iomanip>
#include <sstream>

#include "crawler/progress.hpp"

namespace crawler {

const std::vector<ExportColumn>& export_columns() {
  static const std::vector<ExportColumn> columns = {
      {"id", true},           {"url", false},        {"sha256", false},     {"file_path", false},
      {"file_size", true},    {"width", true},       {"height", true},      {"format", false},
      {"content_type", false}, {"found_on", false},  {"session_id", true},  {"http_status", true},
      {"created_at", false},  {"updated_at", false}, {"etag", false},        {"last_modified", false},
      {"checked_at", false},  {"thumbnails", false, true}, {"filename", false}};
  return columns;
}

namespace {

// How many bytes from `s[i]` form one valid UTF-8 sequence (NUL excluded),
// 0 when none does; *seen is how many bytes were looked at before it failed
// (at least 1): the maximal subpart Unicode replaces with one U+FFFD.
std::size_t utf8_sequence(std::string_view s, std::size_t i, std::size_t* seen) {
  auto b = [&](std::size_t k) { return static_cast<unsigned char>(s[i + k]); };
  unsigned char c = b(0);
  *seen = 1;
  if (c >= 0x01 && c <= 0x7f) return 1;
  std::size_t need;
  unsigned char lo = 0x80, hi = 0xbf;  // the second byte's range
  if (c >= 0xc2 && c <= 0xdf) need = 2;
  else if (c >= 0xe0 && c <= 0xef) {
    need = 3;
    if (c == 0xe0) lo = 0xa0;  // overlong
    if (c == 0xed) hi = 0x9f;  // surrogates
  } else if (c >= 0xf0 && c <= 0xf4) {
    need = 4;
    if (c == 0xf0) lo = 0x90;  // overlong
    if (c == 0xf4) hi = 0x8f;  // past U+10FFFF
  } else {
    return 0;
  }
  for (std::size_t k = 1; k < need; ++k) {
    if (i + k >= s.size()) return 0;
    unsigned char x = b(k);
    if (k == 1 ? (x < lo || x > hi) : (x < 0x80 || x > 0xbf)) return 0;
    *seen = k + 1;
  }
  return need;
}

const Param kNull;

const Param& column(const DbResult& page, std::size_t row, const char* name) {
  return page.has_column(name) ? page.at(row, name) : kNull;
}

}  // namespace

std::string utf8_or_replaced(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    std::size_t seen = 1;
    if (std::size_t n = utf8_sequence(text, i, &seen); n > 0) {
      out.append(text.substr(i, n));
      i += n;
    } else {
      out += "\xef\xbf\xbd";
      i += seen;
    }
  }
  return out;
}

std::string csv_field(const Param& value) {
  if (!value) return "";
  std::string text = utf8_or_replaced(*value);
  bool quote = text.empty() || text.find_first_of(",\"\r\n") != std::string::npos || text.front() == ' ' ||
               text.back() == ' ';
  if (!quote) return text;
  std::string out = "\"";
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string csv_header() {
  std::string out;
  for (const auto& c : export_columns()) out += (out.empty() ? "" : ",") + std::string(c.name);
  return out + "\r\n";
}

std::string csv_record(const DbResult& page, std::size_t row) {
  std::string out;
  bool first = true;
  for (const auto& c : export_columns()) {
    if (!first) out += ',';
    first = false;
    out += csv_field(column(page, row, c.name));
  }
  return out + "\r\n";
}

nlohmann::ordered_json image_json(const DbResult& page, std::size_t row) {
  nlohmann::ordered_json o = nlohmann::ordered_json::object();
  for (const auto& c : export_columns()) {
    const Param& v = column(page, row, c.name);
    if (!v) {
      o[c.name] = nullptr;
      continue;
    }
    long long n = 0;
    const char* end = v->data() + v->size();
    if (c.number && !v->empty() && std::from_chars(v->data(), end, n).ptr == end) {
      o[c.name] = n;
    } else if (c.json) {
      auto doc = nlohmann::ordered_json::parse(*v, nullptr, false);
      o[c.name] = doc.is_discarded() ? nlohmann::ordered_json(*v) : doc;
    } else {
      o[c.name] = *v;
    }
  }
  return o;
}

ShardNaming::ShardNaming(std::int64_t size) : shard_size(size < 1 ? 1 : size), index_digits(0) {
  for (std::int64_t p = 1; p < shard_size; p *= 10) ++index_digits;
}

std::string ShardNaming::shard_name(std::int64_t shard) const {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%05lld", static_cast<long long>(shard));
  return buf;
}

std::string ShardNaming::key(std::int64_t index) const {
  std::int64_t scale = 1;
  for (int d = 0; d < index_digits; ++d) scale *= 10;
  long long value = static_cast<long long>(shard_of(index) * scale + index % shard_size);
  char buf[48];
  std::snprintf(buf, sizeof buf, "%0*lld", 5 + index_digits, value);
  return buf;
}

std::string sample_extension(const std::string& file_path, const Param& format) {
  auto clean = [](std::string_view s) {
    std::string out;
    for (unsigned char c : s) {
      if (!std::isalnum(c)) return std::string();
      out += static_cast<char>(std::tolower(c));
    }
    return out;
  };
  std::size_t slash = file_path.rfind('/');
  std::size_t dot = file_path.rfind('.');
  if (dot != std::string::npos && (slash == std::string::npos || dot > slash) && dot + 1 < file_path.size())
    if (std::string ext = clean(std::string_view(file_path).substr(dot + 1)); !ext.empty() && ext.size() <= 10)
      return ext;
  if (format)
    if (std::string ext = clean(*format); !ext.empty() && ext.size() <= 10) return ext;
  return "bin";
}

nlohmann::ordered_json ExportStats::to_json() const {
  nlohmann::ordered_json failed = nlohmann::ordered_json::array();
  for (const auto& f : failures)
    failed.push_back({{"id", f.id}, {"url", f.url}, {"sha256", f.sha256}, {"error", f.error}});
  return {{"count", count},
          {"successes", successes},
          {"failed_to_download", count - successes},
          {"bytes", bytes},
          {"duration", end_time - start_time},
          {"start_time", start_time},
          {"end_time", end_time},
          {"failures", failed}};
}

std::string export_progress_line(std::int64_t rows, std::int64_t total, std::int64_t bytes, std::int64_t skipped,
                                 double seconds) {
  std::ostringstream line;
  line << "exported " << rows;
  if (rows <= total) {
    line << " of " << total << " images";
    if (total > 0) line << " (" << std::fixed << std::setprecision(1) << 100.0 * rows / total << "%)";
  } else {
    line << " images";
  }
  double rate = seconds > 0 ? rows / seconds : 0;
  line << "  " << std::fixed << std::setprecision(1) << rate << "/s  " << human_bytes(static_cast<double>(bytes));
  if (skipped > 0) line << "  skipped " << skipped;
  if (rate > 0 && rows < total)
    if (std::string eta = duration_text(static_cast<double>(total - rows) / rate); !eta.empty()) line << "  eta " << eta;
  return line.str();
}

}  // namespace crawler
