#include "crawler/session_settings.hpp"

#include <charconv>

namespace crawler {
namespace {

// Reads one column into `out`, or says what is wrong with it.
class RowReader {
 public:
  RowReader(const DbResult& r, std::size_t row) : r_(r), row_(row) {}
  const std::string& error() const { return error_; }

  void text(const char* column, std::string& out) {
    if (const std::string* v = value(column)) out = *v;
  }
  void boolean(const char* column, bool& out) {
    const std::string* v = value(column);
    if (!v) return;
    if (*v == "true") out = true;
    else if (*v == "false") out = false;
    else bad(column, *v);
  }
  template <typename Int>
  void number(const char* column, Int& out) {
    const std::string* v = value(column);
    if (!v) return;
    auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
    if (ec != std::errc() || end != v->data() + v->size()) bad(column, *v);
  }

 private:
  const std::string* value(const char* column) {
    if (!error_.empty()) return nullptr;
    if (!r_.has_column(column)) {
      error_ = std::string("no column ") + column + " in the session's settings";
    } else if (const Param& p = r_.at(row_, column); !p) {
      error_ = std::string("setting ") + column + " is NULL";
    } else {
      return &*p;
    }
    return nullptr;
  }
  void bad(const char* column, const std::string& v) {
    error_ = std::string("setting ") + column + " = \"" + v.substr(0, 40) + "\" is not of its type";
  }

  const DbResult& r_;
  std::size_t row_;
  std::string error_;
};

}  // namespace

std::variant<SessionSettings, std::string> read_session_settings(const DbResult& r, std::size_t row) {
  if (row >= r.rows.size()) return std::string("no settings for the session");
  SessionSettings s{};
  RowReader in(r, row);
  in.number("id", s.session);
  in.text("status", s.status);
  in.text("user_agent", s.user_agent);
  in.boolean("robots", s.robots);
  in.number("max_page_bytes", s.max_page_bytes);
  in.number("max_image_bytes", s.max_image_bytes);
  in.number("max_pixels", s.max_pixels);
  in.number("min_width", s.min_width);
  in.number("min_height", s.min_height);
  in.number("delay_ms", s.delay_ms);
  in.number("per_host", s.per_host);
  in.number("max_depth", s.max_depth);
  in.boolean("revisit", s.revisit);
  in.boolean("sitemaps", s.sitemaps);
  in.boolean("page_patterns", s.page_patterns);
  in.boolean("image_patterns", s.image_patterns);
  if (!in.error().empty()) return in.error();
  // The one setting that may be NULL: no thumbnails.
  if (!r.has_column("thumbnails")) return std::string("no column thumbnails in the session's settings");
  auto sizes = parse_thumbnail_sizes(r.at(row, "thumbnails").value_or(""));
  if (auto* e = std::get_if<std::string>(&sizes)) return "setting thumbnails: " + *e;
  s.thumbnails = std::move(std::get<std::vector<ThumbnailSize>>(sizes));
  return s;
}

}  // namespace crawler
