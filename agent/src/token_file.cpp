#include "crawler/agent/token_file.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "crawler/log.hpp"

namespace crawler::agent {

std::string TokenFile::get() {
  if (path_.empty()) return {};
  std::lock_guard<std::mutex> lock(m_);
  struct stat st;
  if (::stat(path_.c_str(), &st) != 0) {
    if (!failing_)
      CRAWLER_LOG(error) << "file sync: cannot read the token file " << path_.string() << ": "
                         << std::strerror(errno) << (token_.empty() ? "" : "; the last token read is used");
    failing_ = true;
    return token_;
  }
  if (st.st_mtim.tv_sec == mtime_.tv_sec && st.st_mtim.tv_nsec == mtime_.tv_nsec && st.st_size == size_)
    return token_;
  std::ifstream in(path_);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in) {
    if (!failing_) CRAWLER_LOG(error) << "file sync: cannot read the token file " << path_.string();
    failing_ = true;
    return token_;
  }
  std::string t = text.str();
  const char* ws = " \t\r\n";
  t.erase(0, t.find_first_not_of(ws));
  auto end = t.find_last_not_of(ws);
  t.erase(end == std::string::npos ? 0 : end + 1);
  if (size_ >= 0 && t != token_) CRAWLER_LOG(info) << "file sync: the token file changed; using the new token";
  token_ = t;
  mtime_ = st.st_mtim;
  size_ = st.st_size;
  failing_ = false;
  return token_;
}

}  // namespace crawler::agent
