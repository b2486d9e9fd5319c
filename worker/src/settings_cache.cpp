#include "crawler/settings_cache.hpp"

#include "crawler/log.hpp"

namespace crawler {

void SettingsCache::preload() {
  api_.session_settings(std::nullopt, [this](const CallStatus&, std::vector<WriteApi::SettingsRow> rows) {
    for (auto& row : rows) {
      if (const auto* e = std::get_if<std::string>(&row)) {
        CRAWLER_LOG(warn) << "a running session's settings: " << *e;
        continue;
      }
      auto s = std::make_shared<const SessionSettings>(std::move(std::get<SessionSettings>(row)));
      Entry& e = sessions_[s->session];
      if (!e.settings && !e.loading) e.settings = std::move(s);
    }
  });
}

void SettingsCache::with(std::int64_t session, Ready ready) {
  Entry& e = sessions_[session];
  if (e.settings) {
    ready(e.settings, {});
    return;
  }
  e.waiters.push_back(std::move(ready));
  if (e.loading) return;
  e.loading = true;
  api_.session_settings(session, [this, session](const CallStatus& st, std::vector<WriteApi::SettingsRow> rows) {
    const std::string* error = rows.empty() ? nullptr : std::get_if<std::string>(&rows.front());
    if (!st.ok || rows.empty() || error) {
      std::string why = error ? *error : st.ok ? "no such session" : st.error;
      CRAWLER_LOG(warn) << "session " << session << ": cannot read settings: " << why;
      loaded(session, nullptr, why);
      return;
    }
    loaded(session, std::make_shared<const SessionSettings>(std::move(std::get<SessionSettings>(rows.front()))), {});
  });
}

void SettingsCache::loaded(std::int64_t session, Settings settings, const std::string& error) {
  Entry& e = sessions_[session];
  e.loading = false;
  e.settings = settings;  // nullptr after a failure: the next item asks again
  auto waiters = std::move(e.waiters);
  e.waiters.clear();
  for (auto& w : waiters) w(settings, error);
}

void SettingsCache::forget() {
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (it->second.loading) {
      ++it;
    } else {
      it = sessions_.erase(it);
    }
  }
}

}  // namespace crawler
