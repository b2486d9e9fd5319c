// Reads, queries and the connection's rules (keep-alive, timeouts, the
// connection limit) against the real server.
#include <gtest/gtest.h>

#include <future>
#include <nlohmann/json.hpp>

#include "server_test_harness.hpp"

using namespace test;

namespace {

// An agent holding one blob of 1000 bytes, stored as .png.
struct Stocked {
  explicit Stocked(bool tls, std::function<void(crawler::agent::AgentConfig&)> tweak = {})
      : agent(tls, std::move(tweak)), body(pattern(1000, 9)), sha(sha256_of(body)) {
    Request r;
    r.method = "PUT";
    r.path = "/api/blobs/" + sha + ".png";
    r.body = body;
    Reply reply = fetch(agent, r);
    if (reply.status != 201) throw std::runtime_error("setup PUT: " + reply.body + reply.curl_error);
  }
  Reply get(std::vector<std::string> headers = {}, std::string method = "GET", bool token = false) {
    Request r;
    r.method = method;
    r.path = "/api/blobs/" + sha;
    r.headers = std::move(headers);
    r.token = token;
    return fetch(agent, r);
  }
  Agent agent;
  std::string body, sha;
};

class GetTest : public ::testing::TestWithParam<bool> {};

TEST_P(GetTest, GetServesTheBlobWithCacheHeaders) {
  Stocked s(GetParam());
  Reply r = s.get();
  ASSERT_EQ(r.status, 200) << r.curl_error;
  EXPECT_EQ(r.body, s.body);
  EXPECT_EQ(r.header("content-length"), "1000");
  EXPECT_EQ(r.header("content-type"), "image/png");
  EXPECT_EQ(r.header("etag"), "\"" + s.sha + "\"");
  EXPECT_EQ(r.header("cache-control"), "public, max-age=31536000, immutable");
  EXPECT_EQ(r.header("accept-ranges"), "bytes");
}

INSTANTIATE_TEST_SUITE_P(PlainAndTls, GetTest, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "tls" : "plain"; });

TEST(Get, WithTheExtensionToo) {
  Stocked s(false);
  Request r;
  r.path = "/api/blobs/" + s.sha + ".png";
  EXPECT_EQ(fetch(s.agent, r).body, s.body);
}

TEST(Get, HeadSendsTheHeadersOnly) {
  Stocked s(false);
  Reply r = s.get({}, "HEAD");
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("content-length"), "1000");
  EXPECT_TRUE(r.body.empty());
}

TEST(Get, IfNoneMatchAnswers304) {
  Stocked s(false);
  Reply r = s.get({"If-None-Match: \"" + s.sha + "\""});
  EXPECT_EQ(r.status, 304);
  EXPECT_TRUE(r.body.empty());
  EXPECT_EQ(s.get({"If-None-Match: \"other\", W/\"" + s.sha + "\""}).status, 304);
  EXPECT_EQ(s.get({"If-None-Match: *"}).status, 304);
  EXPECT_EQ(s.get({"If-None-Match: \"other\""}).status, 200);
}

TEST(Get, SingleRangesAnswer206) {
  Stocked s(false);
  Reply r = s.get({"Range: bytes=10-19"});
  ASSERT_EQ(r.status, 206);
  EXPECT_EQ(r.body, s.body.substr(10, 10));
  EXPECT_EQ(r.header("content-range"), "bytes 10-19/1000");
  EXPECT_EQ(s.get({"Range: bytes=990-"}).body, s.body.substr(990));
  EXPECT_EQ(s.get({"Range: bytes=-5"}).body, s.body.substr(995));
}

TEST(Get, UnsatisfiableRangeAnswers416) {
  Stocked s(false);
  Reply r = s.get({"Range: bytes=1000-"});
  EXPECT_EQ(r.status, 416);
  EXPECT_EQ(r.header("content-range"), "bytes */1000");
}

TEST(Get, SeveralRangesOrGarbageServeTheWholeBlob) {
  Stocked s(false);
  Reply multi = s.get({"Range: bytes=0-1,5-6"});
  EXPECT_EQ(multi.status, 200);
  EXPECT_EQ(multi.body, s.body);
  EXPECT_EQ(s.get({"Range: bytes=x-y"}).status, 200);
}

TEST(Get, IfRangeWithAnotherTagServesTheWholeBlob) {
  Stocked s(false);
  EXPECT_EQ(s.get({"Range: bytes=0-9", "If-Range: \"" + s.sha + "\""}).status, 206);
  Reply r = s.get({"Range: bytes=0-9", "If-Range: \"other\""});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, s.body);
}

TEST(Get, AbsentBlobAnswers404Json) {
  Stocked s(false);
  Request r;
  r.path = "/api/blobs/" + sha256_of("absent");
  Reply reply = fetch(s.agent, r);
  EXPECT_EQ(reply.status, 404);
  EXPECT_EQ(nlohmann::json::parse(reply.body)["error"], "blob_not_found");
}

TEST(Get, ReadsNeedTheTokenOnlyWhenTheSettingSaysSo) {
  Stocked open(false);
  EXPECT_EQ(open.get({}, "GET", false).status, 200);
  Stocked closed(false, [](auto& c) { c.read_token_required = true; });
  EXPECT_EQ(closed.get({}, "GET", false).status, 401);
  EXPECT_EQ(closed.get({}, "GET", true).status, 200);
}

TEST(Routes, UnknownRouteAnswers404AndWrongMethod405WithAllow) {
  Agent agent(false);
  Request r;
  r.path = "/nothing/here";
  Reply unknown = fetch(agent, r);
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(nlohmann::json::parse(unknown.body)["error"], "not_found");
  r.method = "DELETE";
  r.path = "/api/blobs/" + sha256_of("x");
  Reply wrong = fetch(agent, r);
  EXPECT_EQ(wrong.status, 405);
  EXPECT_EQ(wrong.header("allow"), "GET, HEAD, PUT");
  EXPECT_EQ(nlohmann::json::parse(wrong.body)["error"], "method_not_allowed");
}

TEST(Routes, ReferencedAsksFileSync) {
  Agent agent(false);
  std::string a = sha256_of("a"), b = sha256_of("b");
  agent.events().referenced_answer({a});
  Request r;
  r.method = "POST";
  r.path = "/api/blobs/referenced";
  r.body = nlohmann::json{{"sha256", {a, b}}}.dump();
  Reply reply = fetch(agent, r);
  ASSERT_EQ(reply.status, 200) << reply.body;
  EXPECT_EQ(nlohmann::json::parse(reply.body)["referenced"], nlohmann::json::array({a}));
  EXPECT_EQ(agent.events().last_query(), (std::vector<std::string>{a, b}));

  agent.events().database_down(true);
  EXPECT_EQ(fetch(agent, r).status, 503);
  r.token = false;
  EXPECT_EQ(fetch(agent, r).status, 401);
}

TEST(Routes, ReferencedRefusesBadQueries) {
  Agent agent(false);
  Request r;
  r.method = "POST";
  r.path = "/api/blobs/referenced";
  nlohmann::json too_many = {{"sha256", std::vector<std::string>(10001, sha256_of("a"))}};
  for (const std::string& body : {std::string("{"), std::string("[]"), std::string("{\"sha256\": 5}"),
                                  std::string("{\"sha256\": [\"ABC\"]}"), std::string("{\"sha256\": [1]}"),
                                  std::string("\xff\xfe"), too_many.dump()}) {
    r.body = body;
    Reply reply = fetch(agent, r);
    EXPECT_EQ(reply.status, 400) << body.substr(0, 40);
    EXPECT_EQ(nlohmann::json::parse(reply.body)["error"], "bad_query");
  }
}

TEST(Routes, FileSyncStatusIsPassedThrough) {
  Agent agent(false);
  Request r;
  r.path = "/api/file-sync/status";
  r.token = false;
  Reply reply = fetch(agent, r);
  EXPECT_EQ(reply.status, 200);
  EXPECT_EQ(reply.body, R"({"wanted":3,"peer":"ok"})");
  agent.events().database_down(true);
  EXPECT_EQ(fetch(agent, r).status, 503);
}

TEST(Connections, KeepAliveServesTwoRequestsOnOneConnection) {
  Agent agent(false);
  RawClient raw(agent.port());
  std::string get = "GET /api/blobs/" + sha256_of("none") + " HTTP/1.1\r\nHost: x\r\n\r\n";
  raw.send(get);
  std::string first = raw.receive(3000, "}");
  EXPECT_EQ(first.rfind("HTTP/1.1 404", 0), 0u) << first;
  raw.send(get);
  std::string second = raw.receive(3000, "}");
  EXPECT_EQ(second.rfind("HTTP/1.1 404", 0), 0u) << second;
}

TEST(Connections, PipelinedRequestsAreAnsweredInOrder) {
  Agent agent(false);
  RawClient raw(agent.port());
  std::string get = "GET /api/blobs/" + sha256_of("none") + " HTTP/1.1\r\nHost: x\r\n\r\n";
  raw.send(get + "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string both = raw.receive(3000, "\"not_found\"");
  EXPECT_NE(both.find("blob_not_found"), std::string::npos) << both;
  EXPECT_NE(both.find("\"not_found\""), std::string::npos) << both;
}

TEST(Connections, SlowHeadersAreCutAtTheHeaderTimeout) {
  Agent agent(false, [](auto& c) { c.header_timeout_ms = 300; });
  RawClient raw(agent.port());
  raw.send("GET /api/blobs/");
  auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(raw.closed_within(3000));
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(2000));
}

TEST(Connections, IdleKeptAliveConnectionIsClosed) {
  Agent agent(false, [](auto& c) { c.keep_alive_timeout_ms = 300; });
  RawClient raw(agent.port());
  raw.send("GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_NE(raw.receive(3000, "}").find("404"), std::string::npos);
  EXPECT_TRUE(raw.closed_within(2000));
}

TEST(Connections, OversizedHeaderAnswers431) {
  Agent agent(false, [](auto& c) { c.max_header_bytes = 2048; });
  RawClient raw(agent.port());
  raw.send("GET /nothing HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(4096, 'a') + "\r\n\r\n");
  std::string answer = raw.receive(3000, "}");
  EXPECT_EQ(answer.rfind("HTTP/1.1 431", 0), 0u) << answer;
}

TEST(Connections, GarbageAnswers400) {
  Agent agent(false);
  RawClient raw(agent.port());
  raw.send(std::string("\x16\x03\x01 not http\r\n\r\n"));
  std::string answer = raw.receive(3000, "}");
  EXPECT_EQ(answer.rfind("HTTP/1.1 400", 0), 0u) << answer;
}

TEST(Connections, BeyondTheLimitAnswers503) {
  Agent agent(false, [](auto& c) { c.max_connections = 2; });
  std::string get = "GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n";
  RawClient a(agent.port()), b(agent.port());
  a.send(get);
  b.send(get);
  ASSERT_NE(a.receive(3000, "}").find("404"), std::string::npos);
  ASSERT_NE(b.receive(3000, "}").find("404"), std::string::npos);
  EXPECT_EQ(agent.server().connections(), 2u);

  RawClient c(agent.port());
  c.send(get);
  std::string refused = c.receive(3000, "}");
  EXPECT_EQ(refused.rfind("HTTP/1.1 503", 0), 0u) << refused;
  EXPECT_NE(refused.find("too_many_connections"), std::string::npos);
  EXPECT_TRUE(c.closed_within(3000));

  a.close();
  ASSERT_TRUE(eventually([&] { return agent.server().connections() == 1; }));
  RawClient d(agent.port());
  d.send(get);
  EXPECT_NE(d.receive(3000, "}").find("404"), std::string::npos);
}

TEST(Connections, StopClosesIdleConnectionsAndFinishesInFlightOnes) {
  Agent agent(false);
  RawClient idle(agent.port());
  idle.send("GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_NE(idle.receive(3000, "}").find("404"), std::string::npos);

  // An upload in the middle of its body when the stop comes.
  std::string body = pattern(100000);
  RawClient busy(agent.port());
  busy.send("PUT /api/blobs/" + sha256_of(body) + ".png HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
            kToken + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n");
  busy.send(body.substr(0, 1000));
  ASSERT_TRUE(eventually([&] { return agent.server().connections() == 2; }));
  std::promise<void> stopped;
  agent.server().stop(std::chrono::milliseconds(3000), [&] { stopped.set_value(); });
  EXPECT_TRUE(idle.closed_within(1000));
  busy.send(body.substr(1000));
  std::string answer = busy.receive(3000, "}");
  EXPECT_EQ(answer.rfind("HTTP/1.1 201", 0), 0u) << answer;
  EXPECT_NE(answer.find("Connection: close"), std::string::npos);
  EXPECT_EQ(stopped.get_future().wait_for(std::chrono::seconds(3)), std::future_status::ready);
}

}  // namespace
