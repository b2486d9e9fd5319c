#include "lag_history.hpp"

#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <exception>
#include <string>

#include "api_calls.hpp"
#include "crawler/log.hpp"
#include "server_state.hpp"

namespace crawler::agent {

LagHistory::LagHistory(std::size_t max_samples, std::int64_t window_seconds)
    : max_samples_(max_samples < 1 ? 1 : max_samples), window_seconds_(window_seconds < 1 ? 1 : window_seconds) {}

void LagHistory::add(const LagSample& sample) {
  std::lock_guard<std::mutex> lock(mutex_);
  while (!samples_.empty() && samples_.back().at > sample.at) samples_.pop_back();
  samples_.push_back(sample);
  while (samples_.front().at < sample.at - window_seconds_) samples_.pop_front();
  while (samples_.size() > max_samples_) samples_.pop_front();
}

std::vector<LagSample> LagHistory::samples(std::int64_t now) const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<LagSample> out;
  out.reserve(samples_.size());
  for (const LagSample& s : samples_)
    if (s.at >= now - window_seconds_) out.push_back(s);
  return out;
}

nlohmann::json LagHistory::to_json(std::int64_t now) const {
  nlohmann::json list = nlohmann::json::array();
  for (const LagSample& s : samples(now)) {
    nlohmann::json one = nlohmann::json::object();
    one["at"] = s.at;
    // JSON has no NaN or infinity: such a reading is no reading.
    one["lag_seconds"] = s.lag_seconds && std::isfinite(*s.lag_seconds) ? nlohmann::json(*s.lag_seconds)
                                                                       : nlohmann::json(nullptr);
    one["lag_bytes"] = s.lag_bytes ? nlohmann::json(*s.lag_bytes) : nlohmann::json(nullptr);
    list.push_back(std::move(one));
  }
  nlohmann::json body = nlohmann::json::object();
  body["samples"] = std::move(list);
  return body;
}

namespace {

// This node's own row: the primary's row carries how far its standby is
// behind; a standby's carries NULL (its lag is the primary's to measure).
constexpr const char* kLagSql =
    "SELECT s.lag_seconds, s.lag_bytes FROM @extschema@.ha_status() s WHERE s.is_local";

// A column's text as a number; nullopt for NULL and for text that is not
// one (a reading we cannot trust is no reading).
std::optional<double> as_double(const Param& text) {
  if (!text) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(text->c_str(), &end);
  if (errno != 0 || end == text->c_str() || *end != '\0') return std::nullopt;
  return v;
}

std::optional<std::int64_t> as_int64(const Param& text) {
  if (!text) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  long long v = std::strtoll(text->c_str(), &end, 10);
  if (errno != 0 || end == text->c_str() || *end != '\0') return std::nullopt;
  return static_cast<std::int64_t>(v);
}

// A failed reading is logged once per new reason: the sampler asks every
// 5 s, and a database that is down for an hour is one problem, not 720.
void note_problem(const DbResult& r, std::string* last_problem) {
  std::string problem = r.sqlstate + " " + r.error;
  if (problem == *last_problem) return;
  *last_problem = problem;
  // The database being out of reach is the HA port's news, not ours.
  if (r.sqlstate.rfind("08", 0) == 0 || r.sqlstate == "57P01" || r.sqlstate == "53300")
    CRAWLER_LOG(debug) << "lag history: no sample: " << r.error << " (SQLSTATE " << r.sqlstate << ")";
  else
    CRAWLER_LOG(warn) << "lag history: no sample: " << r.error << " (SQLSTATE " << r.sqlstate << ")";
}

}  // namespace

boost::asio::awaitable<void> run_lag_sampler(std::shared_ptr<ServerState> state,
                                             std::shared_ptr<boost::asio::steady_timer> timer) {
  std::string last_problem;
  while (!state->stopping) {
    try {
      // Named arguments: gcc 12 destroys some temporaries of a co_await
      // expression twice.
      std::string sql = kLagSql;
      std::vector<Param> params;
      DbResult r = co_await sql_call(*state, DbRole::reader, std::move(sql), std::move(params));
      if (!r.ok) {
        note_problem(r, &last_problem);
      } else if (!r.rows.empty() && r.rows[0].size() >= 2) {
        last_problem.clear();
        LagSample sample;
        sample.at = std::chrono::duration_cast<std::chrono::seconds>(
                        std::chrono::system_clock::now().time_since_epoch())
                        .count();
        sample.lag_seconds = as_double(r.rows[0][0]);
        sample.lag_bytes = as_int64(r.rows[0][1]);
        state->lag_history.add(sample);
      }
    } catch (const std::exception& e) {
      // One bad reading must not end the history for the agent's lifetime.
      CRAWLER_LOG(error) << "lag history: " << e.what();
    }
    if (state->stopping) break;
    timer->expires_after(LagHistory::kSampleInterval);
    boost::system::error_code ec;
    auto token = boost::asio::redirect_error(boost::asio::use_awaitable, ec);
    co_await timer->async_wait(token);
  }
}

}  // namespace crawler::agent
