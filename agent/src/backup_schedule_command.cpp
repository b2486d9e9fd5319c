// crawler-ha backup schedule: the agent's backup schedule (BackupScheduler)
// in a process of its own, as the PostgreSQL OS user, for nodes where the
// agent runs as another user in a read-only view of the file system (the
// packaged crawler-ha-agent.service), where pgBackRest cannot work. The
// same settings as the agent's (backup_*, db, store), from its own file.
// docs/backup.md, "Under systemd".
#include <signal.h>

#include <iostream>

#include "crawler/agent/backup_scheduler.hpp"
#include "crawler/agent/config.hpp"
#include "crawler/config_file.hpp"
#include "crawler/log.hpp"

#include "backup_cli.hpp"

namespace crawler::agent::backup_cli {

int backup_schedule(const std::vector<std::string>& args) {
  AgentConfig config;
  bool help = false;
  try {
    config = parse_agent_config(args, &help);
  } catch (const ConfigError& e) {
    return bad_options("schedule", e.what());
  }
  if (help) {
    std::cout << "Usage: crawler-ha backup schedule --config FILE [options]\n\n"
                 "Runs the agent's backup schedule alone, until SIGTERM: every minute, when this node is the\n"
                 "writable primary and a backup is due, `crawler-ha backup run` (then, at most once per\n"
                 "backup_restore_test_interval_s, `crawler-ha backup test-restore`). It reads the agent's\n"
                 "settings; those it uses: db, store, log_level and every backup_* one (backup_config is\n"
                 "required). Run it as the PostgreSQL OS user (crawler-ha-backup.service), and leave\n"
                 "backup_config out of the agent's own configuration, so that one process schedules.\n"
                 "Exit status: 0 stopped by a signal, 2 bad settings.\n";
    return 0;
  }
  set_log_level(config.log_level);
  if (config.backup_config.empty()) return bad_options("schedule", "backup_config is required");
  // Only the settings this command uses: the agent's others (tokens, TLS,
  // listen addresses) may be absent from a file of its own.
  for (const auto& p : agent_config_problems(config))
    if (p.rfind("backup_", 0) == 0) return bad_options("schedule", p);
  if (config.db.empty()) return bad_options("schedule", "db is required");

  // Waited for with sigwait(): blocked here, before the scheduler's thread
  // starts, so that the thread inherits the mask (child processes get a
  // clear one: run_child()).
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  BackupScheduler scheduler(config, "/proc/self/exe", config.backup_store.empty() ? config.store : config.backup_store);
  scheduler.start();
  int signal = 0;
  sigwait(&stop_signals, &signal);
  CRAWLER_LOG(info) << "signal " << signal << ": stopping (a backup in flight is waited for)";
  scheduler.stop();
  return 0;
}

}  // namespace crawler::agent::backup_cli
