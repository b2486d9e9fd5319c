// A cluster pgBackRest has just restored, started apart from everything
// (docs/backup.md, "Restore"): its socket in a private directory, no TCP
// listener, none of the preloaded libraries (so neither the crawler_ha
// worker, which would ping and act on the old pair's peer, nor pg_cron's
// jobs run), no subscription worker (which would connect to the old peer
// and consume its slot), no WAL archiving (which would push into the
// stanza of the node the backup came from), no TLS (its files may not
// exist on this machine). All of it as command-line settings, never written
// into the data directory, so the cluster keeps its own configuration
// when it is started normally afterwards.
#pragma once
#include <optional>
#include <string>

namespace crawler::agent {

// The PostgreSQL programs' directory for the data directory `data_dir`:
// `bin_dir` when given, else Debian's /usr/lib/postgresql/<PG_VERSION>/bin.
// "" with *error when it has no pg_ctl.
std::string pg_bin_dir_for(const std::string& data_dir, const std::string& bin_dir, std::string* error);

class ScratchServer {
 public:
  // `bin_dir`: pg_bin_dir_for(); `socket_dir`: a private directory for the
  // socket (at most 90 bytes: a socket path has a small limit); `log_file`:
  // the server's log.
  ScratchServer(std::string bin_dir, std::string data_dir, std::string socket_dir, std::string log_file,
                int port = 5432);
  // Stops it (immediate) when it still runs.
  ~ScratchServer();
  ScratchServer(const ScratchServer&) = delete;
  ScratchServer& operator=(const ScratchServer&) = delete;

  // pg_ctl start, waiting until it accepts connections: with hot standby
  // off that is after recovery reached its target and the promotion that
  // follows (recovery_target_action=promote). False with *error (the log's
  // last lines) when it ended or did not answer within `timeout_s`.
  bool start(int timeout_s, std::string* error);
  // pg_ctl stop, fast (checkpoint: the cluster is kept) or immediate (it is
  // thrown away). False with *error.
  bool stop(bool fast, std::string* error);
  bool running() const { return running_; }
  // A libpq connection string to `dbname` over the socket, as the OS user.
  std::string conninfo(const std::string& dbname) const;
  // The last `lines` lines of the server's log.
  std::string log_tail(int lines = 15) const;

 private:
  std::string bin_dir_, data_dir_, socket_dir_, log_file_;
  int port_;
  bool running_ = false;
};

}  // namespace crawler::agent
