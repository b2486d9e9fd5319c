// Starting and stopping a restored cluster apart from everything
// (scratch_server.hpp).
#include "crawler/agent/scratch_server.hpp"

#include <libpq-fe.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include <deque>
#include <filesystem>
#include <fstream>
#include <vector>

#include "crawler/agent/child_process.hpp"
#include "crawler/agent/pgbackrest.hpp"

namespace fs = std::filesystem;

namespace crawler::agent {

std::string pg_bin_dir_for(const std::string& data_dir, const std::string& bin_dir, std::string* error) {
  std::string dir = bin_dir;
  if (dir.empty()) {
    std::ifstream in(data_dir + "/PG_VERSION");
    std::string version;
    if (!(in >> version) || version.empty() || version.find_first_not_of("0123456789") != std::string::npos) {
      *error = "cannot read the PostgreSQL version of " + data_dir + " (PG_VERSION): give --pg-bin";
      return "";
    }
    dir = "/usr/lib/postgresql/" + version + "/bin";
  }
  if (::access((dir + "/pg_ctl").c_str(), X_OK) != 0) {
    *error = "no pg_ctl in " + dir + (bin_dir.empty() ? " (install that PostgreSQL version, or give --pg-bin)" : "");
    return "";
  }
  return dir;
}

ScratchServer::ScratchServer(std::string bin_dir, std::string data_dir, std::string socket_dir, std::string log_file,
                             int port)
    : bin_dir_(std::move(bin_dir)),
      data_dir_(std::move(data_dir)),
      socket_dir_(std::move(socket_dir)),
      log_file_(std::move(log_file)),
      port_(port) {}

ScratchServer::~ScratchServer() {
  if (running_) {
    std::string ignored;
    stop(false, &ignored);
  }
}

bool ScratchServer::start(int timeout_s, std::string* error) {
  // pg_ctl hands -o to the shell that starts postgres: every value here is
  // a number or a safe_path() (no space, quote or shell character).
  if (!safe_path(socket_dir_) || !safe_path(data_dir_) || !safe_path(log_file_) || socket_dir_.size() > 90) {
    *error = "the data, socket and log paths must be safe paths (and the socket directory at most 90 bytes)";
    return false;
  }
  const std::string options = "-c listen_addresses= -c unix_socket_directories=" + socket_dir_ +
                              " -c port=" + std::to_string(port_) +
                              " -c shared_preload_libraries= -c max_logical_replication_workers=0"
                              " -c archive_mode=off -c hot_standby=off -c ssl=off"
                              " -c cluster_name=crawler_ha_restore";
  ChildResult r = run_child({bin_dir_ + "/pg_ctl", "start", "-w", "-t", std::to_string(timeout_s), "-D", data_dir_,
                             "-l", log_file_, "-o", options},
                            pgbackrest_environment());
  if (!r.ok()) {
    *error = "the restored cluster did not start (" + r.how() + "); its log ends:\n" + log_tail();
    // pg_ctl may have given up waiting on a server that still recovers.
    std::string ignored;
    running_ = true;
    stop(false, &ignored);
    return false;
  }
  running_ = true;
  // pg_ctl's wait ends at "standby" too, which with hot standby off is a
  // server still replaying: the cluster is ready when it takes a session.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
  const std::string ping = conninfo("postgres") + " connect_timeout=5";
  for (;;) {
    if (PQping(ping.c_str()) == PQPING_OK) return true;
    if (::access((data_dir_ + "/postmaster.pid").c_str(), F_OK) != 0) {
      running_ = false;
      *error = "the restored cluster stopped during its recovery; its log ends:\n" + log_tail();
      return false;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      *error = "the restored cluster did not finish its recovery within " + std::to_string(timeout_s) +
               " s; its log ends:\n" + log_tail();
      std::string ignored;
      stop(false, &ignored);
      return false;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

bool ScratchServer::stop(bool fast, std::string* error) {
  ChildResult r = run_child({bin_dir_ + "/pg_ctl", "stop", "-w", "-t", "600", "-D", data_dir_, "-m",
                             fast ? "fast" : "immediate"},
                            pgbackrest_environment());
  if (!r.ok()) {
    // Not running any more is stopped.
    if (::access((data_dir_ + "/postmaster.pid").c_str(), F_OK) != 0) {
      running_ = false;
      return true;
    }
    *error = "pg_ctl stop: " + r.how() + ": " + r.err;
    return false;
  }
  running_ = false;
  return true;
}

std::string ScratchServer::conninfo(const std::string& dbname) const {
  return "host=" + socket_dir_ + " port=" + std::to_string(port_) + " dbname='" + dbname +
         "' application_name=crawler-ha-restore";
}

std::string ScratchServer::log_tail(int lines) const {
  std::ifstream in(log_file_);
  std::deque<std::string> last;
  std::string line;
  while (std::getline(in, line)) {
    last.push_back(line);
    if (static_cast<int>(last.size()) > lines) last.pop_front();
  }
  std::string out;
  for (const auto& l : last) out += "  " + l + "\n";
  return out.empty() ? "  (empty)\n" : out;
}

}  // namespace crawler::agent
