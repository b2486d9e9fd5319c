// The settings of the sessions this worker has items of, read through the
// write API (crawl_session_settings()) once per session and kept until a
// reload; the items of a session whose settings are being read wait for
// that one read.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "crawler/session_settings.hpp"
#include "crawler/write_api.hpp"

namespace crawler {

class SettingsCache {
 public:
  using Settings = std::shared_ptr<const SessionSettings>;
  // Runs with the session's settings, or with nullptr and why they could not
  // be read.
  using Ready = std::function<void(Settings settings, const std::string& error)>;

  explicit SettingsCache(WriteApi& api) : api_(api) {}
  // Reads every running session's settings: sent ahead of the first claim
  // on the same connection, its items need not wait for a second round trip.
  void preload();
  // `ready` runs at once when the session's settings are known, else when
  // they have been read (on the loop).
  void with(std::int64_t session, Ready ready);
  // Settings are read again when next asked for (a reload); a read that is
  // out keeps its waiters and its answer.
  void forget();

 private:
  struct Entry {
    Settings settings;
    bool loading = false;
    std::vector<Ready> waiters;
  };
  void loaded(std::int64_t session, Settings settings, const std::string& error);

  WriteApi& api_;
  std::unordered_map<std::int64_t, Entry> sessions_;
};

}  // namespace crawler
