// The media type of a Content-Type header, as the crawler judges a body by it.
#pragma once
#include <string>

namespace crawler {

// "text/html; charset=utf-8" -> "text/html": lower case, no parameters.
std::string media_type(const std::string& content_type);
// Whether a page of this media type is parsed as HTML ("" counts: a server
// that names no type usually serves HTML).
bool is_html_media_type(const std::string& media_type);

}  // namespace crawler
