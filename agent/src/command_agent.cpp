#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include <boost/asio/signal_set.hpp>

#include "crawler/agent/alert_sender.hpp"
#include "crawler/agent/backup_scheduler.hpp"
#include "crawler/agent/commands.hpp"
#include "crawler/agent/server/api_tokens.hpp"
#include "crawler/agent/server/bearer_token.hpp"
#include "crawler/agent/server/server.hpp"
#include "crawler/agent/server/thumbnailer.hpp"
#include "crawler/config_file.hpp"
#include "crawler/store_sync.hpp"
#include "crawler/log.hpp"
#include "crawler/store.hpp"

namespace crawler::agent {
namespace asio = boost::asio;

namespace {

int refuse(const std::string& why) {
  std::cerr << "crawler-ha agent: " << why << "\n";
  return 2;
}

// A store the agent cannot write to would fail every PUT: found at start
// by writing (and dropping) a small file through the store's own code.
bool store_writable(FileStore& store, std::string* error) {
  auto probe = store.create(error);
  if (!probe) return false;
  std::string sha;
  if (!probe->write("probe", 5) || !probe->finish(&sha, false)) {
    *error = probe->error();
    return false;
  }
  return true;  // the probe's temporary file goes with it
}

// Written whole, then renamed: a test reading it never sees half a number.
void write_port_file(const std::string& path, unsigned short port) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp);
    out << port << "\n";
    if (!out) throw std::runtime_error("cannot write port file " + tmp);
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace

int run_agent_command(const std::vector<std::string>& args, const MakeEvents& make_events) {
  AgentConfig config;
  bool help = false;
  try {
    config = parse_agent_config(args, &help);
  } catch (const ConfigError& e) {
    return refuse(e.what());
  }
  if (help) {
    std::cout << "Usage: crawler-ha agent [--config FILE] [options]\n\n" << agent_options_help();
    return 0;
  }
  set_log_level(config.log_level);
  auto problems = agent_config_problems(config);
  if (!problems.empty()) {
    for (const auto& p : problems) std::cerr << "crawler-ha agent: " << p << "\n";
    return 2;
  }
  BearerToken token;
  std::string error;
  if (!token.load(config.token_file, &error)) return refuse(error);
  ApiTokens api_tokens;
  if (!api_tokens.load(config.api_tokens_file, &error)) return refuse(error);
  // The receiver's token is a password like ours: refused when others may
  // read it (it is read again at each delivery, so a rotation needs no
  // restart).
  if (!config.alert_webhook_token_file.empty() &&
      !private_file(config.alert_webhook_token_file, "alert webhook token file", &error))
    return refuse(error);
  std::unique_ptr<FileStore> store;
  try {
    store = std::make_unique<FileStore>(config.store);
  } catch (const std::exception& e) {
    return refuse(std::string("store unusable: ") + e.what());
  }
  if (!store_writable(*store, &error)) return refuse("store " + config.store + " is not writable: " + error);
  if (int n = store->remove_stale_temporaries())
    CRAWLER_LOG(info) << "removed " << n << " temporary file(s) of a crashed process from the store";

  // One group sync for everything that writes the store: uploads and
  // fetches share its syncfs() calls.
  StoreSync durability(store->root());
  asio::io_context io(config.threads);
  EventsService service = make_events(config, *store, durability, io);
  // Checked by agent_config_problems() already.
  std::vector<int> sizes = parse_thumbnail_sizes(config.thumbnail_sizes, &error).value_or(std::vector<int>{256});
  Thumbnailer thumbnails(store->root(), sizes, config.thumbnail_threads,
                         static_cast<std::size_t>(config.thumbnail_queue), config.thumbnail_max_pixels);
  ApiServices api;
  api.sql = service.sql.get();
  api.api_tokens = &api_tokens;
  api.thumbnails = &thumbnails;
  Server server(config, *store, durability, *service.events, token, io, ServerPort::application, api);
  AlertSender alerts(config, store->root().string());
  // The backups run this very binary: /proc/self/exe names it even when
  // the agent was started through a relative path or a symlink.
  BackupScheduler backups(config, "/proc/self/exe", store->root().string());
  std::unique_ptr<Server> ha_server;
  if (config.ha_listen != "off")
    ha_server = std::make_unique<Server>(config, *store, durability, *service.events, token, io, ServerPort::ha, api);
  try {
    server.start();
    if (ha_server) ha_server->start();
    if (!config.port_file.empty()) write_port_file(config.port_file, server.local_endpoint().port());
    if (ha_server && !config.ha_port_file.empty())
      write_port_file(config.ha_port_file, ha_server->local_endpoint().port());
    service.start();
    alerts.start();
    backups.start();
  } catch (const std::exception& e) {
    std::cerr << "crawler-ha agent: " << e.what() << "\n";
    return 1;
  }

  asio::signal_set signals(io, SIGINT, SIGTERM, SIGHUP);
  std::function<void(const boost::system::error_code&, int)> on_signal;
  on_signal = [&](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    if (signal == SIGHUP) {
      std::string why;
      if (token.load(config.token_file, &why)) CRAWLER_LOG(info) << "SIGHUP: token file re-read";
      else CRAWLER_LOG(error) << "SIGHUP: " << why << "; the previous token stays in use";
      if (api_tokens.load(config.api_tokens_file, &why))
        CRAWLER_LOG(info) << "SIGHUP: " << api_tokens.size() << " scoped API token(s) read";
      else
        CRAWLER_LOG(error) << "SIGHUP: " << why << "; the previous scoped tokens stay in use";
      signals.async_wait(on_signal);
      return;
    }
    CRAWLER_LOG(info) << "signal " << signal << ": stopping (requests in flight have "
                      << config.shutdown_timeout_ms << " ms)";
    // Both ports drain at once; the loop stops when the last has.
    // The two may finish on different threads of the loop.
    auto pending = std::make_shared<std::atomic<int>>(ha_server ? 2 : 1);
    auto drained = [&, pending] {
      if (pending->fetch_sub(1) > 1) return;
      signals.cancel();
      io.stop();
    };
    server.stop(std::chrono::milliseconds(config.shutdown_timeout_ms), drained);
    if (ha_server) ha_server->stop(std::chrono::milliseconds(config.shutdown_timeout_ms), drained);
  };
  signals.async_wait(on_signal);

  std::vector<std::thread> threads;
  for (int i = 1; i < config.threads; ++i) threads.emplace_back([&] { io.run(); });
  io.run();
  for (auto& t : threads) t.join();
  alerts.stop();
  backups.stop();
  service.stop(std::chrono::milliseconds(config.shutdown_timeout_ms));
  CRAWLER_LOG(info) << "stopped";
  return 0;
}

}  // namespace crawler::agent
