#include "crawler/agent/pgbackrest.hpp"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "crawler/agent/server/bearer_token.hpp"

namespace crawler::agent {

const char* const kWrittenByMarker = "# Written by crawler-ha backup setup";

bool safe_path(const std::string& path) {
  if (path.empty() || path.size() > 1024 || path[0] != '/') return false;
  for (char c : path) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              std::string_view("/_.-+,@=:").find(c) != std::string_view::npos;
    if (!ok) return false;
  }
  return (path + "/").find("/../") == std::string::npos;
}

bool safe_stanza(const std::string& name) {
  if (name.empty() || name.size() > 63) return false;
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
          c == '-'))
      return false;
  return true;
}

std::string include_dir_for(const std::string& config_file) {
  auto slash = config_file.find_last_of('/');
  std::string dir = slash == std::string::npos || slash == 0 ? "" : config_file.substr(0, slash);
  return dir + "/conf.d";
}

std::string passphrase_file_in(const std::string& include_dir) { return include_dir + "/crawler_ha-cipher.conf"; }

std::optional<std::string> read_passphrase_file(const std::string& path, std::string* error) {
  if (!private_file(path, "passphrase file", error)) return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in && !in.eof()) {
    *error = "passphrase file " + path + " cannot be read";
    return std::nullopt;
  }
  std::string p = text.str();
  const char* ws = " \t\r\n";
  auto b = p.find_first_not_of(ws);
  auto e = p.find_last_not_of(ws);
  p = b == std::string::npos ? "" : p.substr(b, e - b + 1);
  if (p.empty()) {
    *error = "passphrase file " + path + " is empty";
    return std::nullopt;
  }
  for (char c : p)
    if (c < 0x21 || c > 0x7e) {
      *error = "passphrase file " + path +
               " must hold one line of printable ASCII without spaces (e.g. openssl rand -base64 48)";
      return std::nullopt;
    }
  if (p.size() < 20 || p.size() > 1024) {
    *error = "passphrase file " + path + ": the passphrase must have 20 to 1024 characters (it has " +
             std::to_string(p.size()) + "; e.g. openssl rand -base64 48)";
    return std::nullopt;
  }
  return p;
}

std::string render_config(const PgBackRestSettings& s, const std::string& passphrase_file) {
  std::ostringstream c;
  c << kWrittenByMarker << " (docs/backup.md): run it again rather than edit.\n"
    << "# The repository's passphrase is in " << passphrase_file << " (mode 600), read from the\n"
    << "# include directory; it is never in this file, on a command line or in a log.\n"
    << "[global]\n"
    << "repo1-path=" << s.repo_path << "\n"
    << "repo1-cipher-type=aes-256-cbc\n"
    << "repo1-retention-full=2\n"
    << "compress-type=zst\n"
    << "start-fast=y\n"
    << "process-max=" << s.process_max << "\n"
    << "log-level-console=warn\n"
    << "log-level-file=info\n"
    << "log-path=" << s.log_path << "\n"
    << "lock-path=" << s.lock_path << "\n"
    << "spool-path=" << s.spool_path << "\n"
    << "\n"
    << "[" << s.stanza << "]\n"
    << "pg1-path=" << s.pg_path << "\n"
    << "pg1-port=" << s.pg_port << "\n"
    << "pg1-socket-path=" << s.pg_socket_dir << "\n"
    << "pg1-user=" << s.pg_user << "\n"
    << "pg1-database=" << s.pg_database << "\n";
  return c.str();
}

std::string render_passphrase_include(const std::string& passphrase) {
  return std::string(kWrittenByMarker) +
         ": the passphrase of the repository. Keep a copy elsewhere:\n"
         "# without it no backup in the repository can be read.\n"
         "[global]\n"
         "repo1-cipher-pass=" +
         passphrase + "\n";
}

std::string archive_command(const std::string& exe, const std::string& config, const std::string& include_dir,
                            const std::string& stanza) {
  return exe + " --config=" + config + " --config-include-path=" + include_dir + " --stanza=" + stanza +
         " archive-push %p";
}

namespace {

std::int64_t int_at(const nlohmann::json& j, const char* what) {
  if (!j.is_number_integer()) throw std::runtime_error(std::string("pgbackrest info: ") + what + " is not a number");
  return j.get<std::int64_t>();
}

std::string text_at(const nlohmann::json& j, const char* what) {
  if (!j.is_string()) throw std::runtime_error(std::string("pgbackrest info: ") + what + " is not a string");
  return j.get<std::string>();
}

}  // namespace

namespace {

nlohmann::json info_document(const std::string& json) {
  nlohmann::json doc;
  try {
    // With a wrong passphrase pgBackRest's message quotes what it decrypted,
    // raw: any byte sequence, valid UTF-8 or not. Everything read here is
    // ASCII (labels, LSNs, WAL names, numbers; the paths are safe_path()s),
    // so every other byte becomes '?' and every control character a space
    // (its JSON is one line: a space is harmless between tokens too),
    // rather than fail the parse.
    std::string text = json;
    for (char& c : text) {
      auto u = static_cast<unsigned char>(c);
      if (u >= 0x80) c = '?';
      else if (u < 0x20) c = ' ';
    }
    doc = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(std::string("pgbackrest info did not answer JSON: ") + e.what());
  }
  if (!doc.is_array()) throw std::runtime_error("pgbackrest info: not a list of stanzas");
  return doc;
}

}  // namespace

std::vector<std::string> stanza_names(const std::string& json) {
  std::vector<std::string> names;
  for (const auto& s : info_document(json))
    if (s.is_object() && s.contains("name") && s["name"].is_string()) names.push_back(s["name"].get<std::string>());
  return names;
}

StanzaInfo parse_info(const std::string& json, const std::string& stanza) {
  const nlohmann::json doc = info_document(json);
  for (const auto& s : doc) {
    if (!s.is_object() || s.value("name", "") != stanza) continue;
    StanzaInfo out;
    try {
      const auto& status = s.at("status");
      out.status_code = static_cast<int>(int_at(status.at("code"), "status.code"));
      out.status_message = status.value("message", "");
      // "other" says little; each repository's own status says what.
      if (s.contains("repo") && s["repo"].is_array())
        for (const auto& r : s["repo"])
          if (r.is_object() && r.contains("status") && r["status"].is_object() &&
              r["status"].value("code", 0) != 0 && r["status"].value("message", "") != out.status_message)
            out.status_message += ": " + r["status"].value("message", "");
      if (s.contains("db") && s["db"].is_array() && !s["db"].empty()) {
        // The current database is the last one (after an upgrade, earlier ones stay listed).
        const auto& id = s["db"].back().at("system-id");
        if (!id.is_number_integer() && !id.is_number_unsigned())
          throw std::runtime_error("pgbackrest info: db system-id is not a number");
        out.system_id = id.dump();
      }
      if (s.contains("backup")) {
        if (!s["backup"].is_array()) throw std::runtime_error("pgbackrest info: backup is not a list");
        for (const auto& b : s["backup"]) {
          BackupInfo bi;
          bi.label = text_at(b.at("label"), "label");
          bi.type = text_at(b.at("type"), "type");
          if (bi.type != "full" && bi.type != "diff" && bi.type != "incr")
            throw std::runtime_error("pgbackrest info: unknown backup type " + bi.type);
          bi.prior = b.at("prior").is_null() ? "" : text_at(b.at("prior"), "prior");
          bi.start_time = int_at(b.at("timestamp").at("start"), "timestamp.start");
          bi.stop_time = int_at(b.at("timestamp").at("stop"), "timestamp.stop");
          bi.start_lsn = text_at(b.at("lsn").at("start"), "lsn.start");
          bi.stop_lsn = text_at(b.at("lsn").at("stop"), "lsn.stop");
          bi.wal_start = text_at(b.at("archive").at("start"), "archive.start");
          bi.wal_stop = text_at(b.at("archive").at("stop"), "archive.stop");
          const auto& info = b.at("info");
          bi.size = int_at(info.at("size"), "info.size");
          bi.delta = int_at(info.at("delta"), "info.delta");
          bi.repo_size = int_at(info.at("repository").at("size"), "info.repository.size");
          bi.repo_delta = int_at(info.at("repository").at("delta"), "info.repository.delta");
          bi.error = b.value("error", false);
          // What `crawler-ha backup run` annotated it with: the node and
          // its term then. Anything else (a backup made by hand) has none.
          if (b.contains("annotation") && b["annotation"].is_object()) {
            const auto& a = b["annotation"];
            if (a.contains("crawler_ha_node") && a["crawler_ha_node"].is_string())
              bi.node = a["crawler_ha_node"].get<std::string>();
            if (a.contains("crawler_ha_term") && a["crawler_ha_term"].is_string()) {
              const std::string t = a["crawler_ha_term"].get<std::string>();
              if (!t.empty() && t.size() <= 18 && t.find_first_not_of("0123456789") == std::string::npos)
                bi.term = std::stoll(t);
            }
          }
          out.backups.push_back(std::move(bi));
        }
      }
    } catch (const nlohmann::json::exception& e) {
      throw std::runtime_error(std::string("pgbackrest info: unexpected answer: ") + e.what());
    }
    return out;
  }
  throw std::runtime_error("pgbackrest info does not list the stanza " + stanza);
}

VerifyResult parse_verify(const std::string& text) {
  VerifyResult r;
  r.detail = text;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    auto b = line.find_first_not_of(' ');
    if (b == std::string::npos) continue;
    // The stanza's own status is the first "status:" line; later ones
    // belong to its archives and backups.
    if (line.compare(b, 8, "status: ") == 0) {
      r.ok = line.substr(b + 8) == "ok";
      return r;
    }
  }
  return r;
}

PgBackRest::PgBackRest(std::string exe, std::string config, std::string include_dir, std::string stanza,
                       std::vector<std::string> env)
    : exe_(std::move(exe)),
      config_(std::move(config)),
      include_dir_(std::move(include_dir)),
      stanza_(std::move(stanza)),
      env_(std::move(env)) {}

ChildResult PgBackRest::run(const std::string& command, const std::vector<std::string>& options) const {
  std::vector<std::string> argv{exe_, "--config=" + config_, "--config-include-path=" + include_dir_};
  if (!stanza_.empty()) argv.push_back("--stanza=" + stanza_);
  argv.insert(argv.end(), options.begin(), options.end());
  argv.push_back(command);
  return run_child(argv, env_);
}

std::vector<std::string> pgbackrest_environment() {
  std::vector<std::string> env;
  const char* path = std::getenv("PATH");
  env.push_back(std::string("PATH=") + (path && *path ? path : "/usr/bin:/bin"));
  for (const char* name : {"HOME", "LANG", "TZ"})
    if (const char* v = std::getenv(name)) env.push_back(std::string(name) + "=" + v);
  return env;
}

}  // namespace crawler::agent
