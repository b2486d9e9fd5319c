#include "crawler/media_type.hpp"

#include <cctype>

namespace crawler {

std::string media_type(const std::string& content_type) {
  std::string m = content_type.substr(0, content_type.find(';'));
  while (!m.empty() && m.back() == ' ') m.pop_back();
  for (auto& c : m) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return m;
}

bool is_html_media_type(const std::string& mt) {
  return mt.empty() || mt == "text/html" || mt == "application/xhtml+xml";
}

}  // namespace crawler
