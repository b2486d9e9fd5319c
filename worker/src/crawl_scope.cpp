#include "crawler/crawl_scope.hpp"

namespace crawler {

bool in_crawl_scope(const UrlParts& target, std::string_view kind, const SessionSettings& session) {
  return (kind == "image" && session.images_any_host) || in_domains(target, session.allowed_domains);
}

}  // namespace crawler
