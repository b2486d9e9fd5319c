#include "crawler/upload_outcome.hpp"

#include <cctype>

namespace crawler {
namespace {

void skip_space(std::string_view s, std::size_t& i) {
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
}

// The message the item records: what the agent said, clipped, and why.
std::string answer_text(long status, std::string_view body) {
  std::string error = json_member(body, "error");
  std::string text = "HTTP " + std::to_string(status);
  if (!error.empty()) text += " " + error.substr(0, 200);
  return text;
}

}  // namespace

std::string json_member(std::string_view json, std::string_view name) {
  // Finds "name" as a key (followed by a colon), then reads the string
  // after it, with the escapes the agent can write; anything else is "".
  const std::string key = "\"" + std::string(name) + "\"";
  for (std::size_t at = json.find(key); at != std::string_view::npos; at = json.find(key, at + 1)) {
    std::size_t i = at + key.size();
    skip_space(json, i);
    if (i >= json.size() || json[i] != ':') continue;
    ++i;
    skip_space(json, i);
    if (i >= json.size()) return "";
    if (json[i] != '"') {
      // a literal (true, false, a number): its text
      std::size_t end = i;
      while (end < json.size() && (std::isalnum(static_cast<unsigned char>(json[end])) || json[end] == '-' ||
                                   json[end] == '.'))
        ++end;
      return std::string(json.substr(i, end - i));
    }
    std::string out;
    for (++i; i < json.size() && json[i] != '"'; ++i) {
      if (json[i] == '\\' && i + 1 < json.size()) {
        ++i;
        switch (json[i]) {
          case 'n': out += ' '; break;
          case 't': out += ' '; break;
          case 'r': out += ' '; break;
          default: out += json[i];
        }
      } else {
        out += json[i];
      }
    }
    return out;
  }
  return "";
}

UploadOutcome classify_upload(CURLcode code, long status, std::string_view body, std::string_view curl_error) {
  UploadOutcome o;
  std::string why = curl_error.empty() ? std::string(curl_easy_strerror(code)) : std::string(curl_error);
  if (code == CURLE_READ_ERROR) {
    // Our own read of the spooled file failed: the file, not the agent.
    o.verdict = UploadVerdict::kBadFile;
    o.error = "upload: the spooled file cannot be read: " + why;
    return o;
  }
  if (code != CURLE_OK) {
    // No answer, or a broken one: refused, reset, timed out, TLS, DNS.
    // The agent (or its node) is down or unreachable; after a failover the
    // database names another one.
    o.verdict = UploadVerdict::kTryAgain;
    o.error = "upload: " + why;
    return o;
  }
  if (status >= 200 && status < 300) {
    o.verdict = UploadVerdict::kStored;
    o.created = json_member(body, "created") == "true" || status == 201;
    return o;
  }
  switch (status) {
    case 422:
      o.verdict = UploadVerdict::kBadFile;
      o.error = "upload: the agent's sha256 of the file differs (" + answer_text(status, body) + ")";
      return o;
    case 507:
      o.verdict = UploadVerdict::kStoreFull;
      o.error = "store_full: the agent's store is full (" + answer_text(status, body) + ")";
      return o;
    case 413:
      o.verdict = UploadVerdict::kTooLarge;
      o.error = "too large for the agent's store (" + answer_text(status, body) + ")";
      return o;
    case 401:
    case 403:
      o.verdict = UploadVerdict::kUnauthorized;
      o.error = "the agent refused the token (" + answer_text(status, body) +
                "): check --agent-token-file against the agents' token";
      return o;
    case 502:
    case 503:
    case 504:
      // The agent cannot store now (its store unwritable, its standby not
      // answering in sync mode), or a proxy in front of it has no agent.
      o.verdict = UploadVerdict::kTryAgain;
      o.error = "upload: " + answer_text(status, body);
      return o;
    default:
      o.verdict = UploadVerdict::kRejected;
      o.error = "upload refused: " + answer_text(status, body);
      return o;
  }
}

const char* verdict_name(UploadVerdict v) {
  switch (v) {
    case UploadVerdict::kStored: return "stored";
    case UploadVerdict::kTryAgain: return "try again";
    case UploadVerdict::kBadFile: return "bad file";
    case UploadVerdict::kStoreFull: return "store full";
    case UploadVerdict::kTooLarge: return "too large";
    case UploadVerdict::kUnauthorized: return "unauthorized";
    case UploadVerdict::kRejected: return "rejected";
    case UploadVerdict::kStopped: return "stopped";
  }
  return "?";
}

}  // namespace crawler
