#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "crawler/write_api.hpp"

using namespace crawler;

namespace {

// Records every call instead of sending it; answers when told to.
class Recorder : public DbCaller {
 public:
  struct Sent {
    Stmt stmt;
    std::vector<Param> params;
    Callback done;
    bool idempotent;
    std::uint64_t key;
    std::int64_t lock_order;
  };
  void call(Stmt s, std::vector<Param> params, Callback done, bool idempotent, std::uint64_t key,
            std::int64_t lock_order) override {
    sent.push_back({s, std::move(params), std::move(done), idempotent, key, lock_order});
  }
  void answer(Callback done, DbResult&& r) override { answered.emplace_back(std::move(done), std::move(r)); }
  std::size_t pending() const override { return sent.size(); }

  std::vector<Sent> sent;
  std::vector<std::pair<Callback, DbResult>> answered;
};

DbResult rows(std::vector<std::string> columns, std::vector<std::vector<Param>> values) {
  DbResult r;
  r.ok = true;
  r.columns = std::move(columns);
  r.rows = std::move(values);
  return r;
}

std::vector<Param> P(std::initializer_list<Param> l) { return l; }

}  // namespace

TEST(WriteApi, ClaimSendsWorkerCountAndLeaseAndReadsItemsByColumn) {
  Recorder db;
  WriteApi api(db, "w1", 60);
  std::vector<ClaimedItem> got;
  api.claim(32, [&](const CallStatus& st, std::vector<ClaimedItem> items) {
    EXPECT_TRUE(st.ok);
    got = std::move(items);
  });
  ASSERT_EQ(db.sent.size(), 1u);
  EXPECT_EQ(db.sent[0].stmt, Stmt::crawl_claim);
  EXPECT_EQ(db.sent[0].params, P({"w1", "32", "60 seconds"}));
  EXPECT_EQ(db.sent[0].key, 0u);  // the claims' connection
  // columns in another order than crawl_claim's: read by name
  db.sent[0].done(rows({"url", "item_id", "session_id", "kind", "depth", "attempts", "found_on"},
                       {{"http://a.test/", "1025", "3", "image", "2", "1", "http://a.test/p"}}));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].id, 1025);
  EXPECT_EQ(got[0].session, 3);
  EXPECT_EQ(got[0].url, "http://a.test/");
  EXPECT_EQ(got[0].kind, "image");
  EXPECT_EQ(got[0].depth, 2);
  EXPECT_EQ(got[0].found_on, "http://a.test/p");
}

TEST(WriteApi, AnItemsResultsGoOnItsOwnKeyInSessionLockOrder) {
  Recorder db;
  WriteApi api(db, "w1", 60);
  api.complete(2049, 5, CrawlResult{200, 1234, ""}, [](const CallStatus&) {});
  api.fail(2049, 5, "HTTP 404", std::nullopt, [](const CallStatus&) {});
  ASSERT_EQ(db.sent.size(), 2u);
  for (const auto& s : db.sent) {
    EXPECT_EQ(s.key, 2049u);
    EXPECT_EQ(s.lock_order, 5);
    EXPECT_TRUE(s.idempotent);
  }
  ASSERT_EQ(db.sent[0].params.size(), 3u);
  EXPECT_EQ(db.sent[0].params[0], "2049");
  EXPECT_EQ(db.sent[0].params[1], "w1");
  EXPECT_EQ(nlohmann::json::parse(*db.sent[0].params[2]), (nlohmann::json{{"http_status", 200}, {"bytes", 1234}}));
  EXPECT_EQ(db.sent[1].params, P({"2049", "w1", "HTTP 404", Param{}}));
}

TEST(WriteApi, ACompletionNoteIsAJsonString) {
  Recorder db;
  WriteApi api(db, "w1", 60);
  api.complete(1, 1, CrawlResult{301, 0, "redirected to \"x\"\n"}, [](const CallStatus&) {});
  EXPECT_EQ(nlohmann::json::parse(*db.sent[0].params[2]),
            (nlohmann::json{{"http_status", 301}, {"bytes", 0}, {"note", "redirected to \"x\"\n"}}));
}

TEST(WriteApi, ANoteThatIsNotUtf8IsStillJson) {
  Recorder db;
  WriteApi api(db, "w1", 60);
  api.complete(1, 1, CrawlResult{200, 3, "bad \xff byte"}, [](const CallStatus&) {});
  nlohmann::json j = nlohmann::json::parse(*db.sent[0].params[2]);
  EXPECT_EQ(j["note"], "bad \xef\xbf\xbd byte");  // U+FFFD
}

TEST(WriteApi, AFailureIsOneLineAndARetryWaitsAtLeastASecond) {
  Recorder db;
  WriteApi api(db, "w1", 60);
  api.fail(1, 1, std::string("bad\nthing\0", 10), 0L, [](const CallStatus&) {});
  api.fail(1, 1, "HTTP 503", 40L, [](const CallStatus&) {});
  EXPECT_EQ(db.sent[0].params[2], "bad thing ");
  EXPECT_EQ(db.sent[0].params[3], "1 seconds");
  EXPECT_EQ(db.sent[1].params[3], "40 seconds");
}

TEST(WriteApi, RecordImageSendsItsEighteenArgumentsInOrder) {
  Recorder db;
  WriteApi api(db, "w1", 60);
  ImageRecord im;
  im.item = 4097;
  im.session = 9;
  im.url = "http://a.test/img/my%20cat.jpg?x=1";
  im.found_on = "http://a.test/";
  im.sha256 = std::string(64, 'a');
  im.file_path = "aa/aa/" + std::string(64, 'a') + ".jpg";
  im.file_size = 5000;
  im.width = 640;
  im.height = 480;
  im.format = "jpeg";
  im.content_type = "Image/JPEG; charset=binary";
  im.http_status = 200;
  api.record_image(im, [](const CallStatus&) {});
  ASSERT_EQ(db.sent.size(), 1u);
  EXPECT_EQ(db.sent[0].stmt, Stmt::image_record);
  Param none;
  EXPECT_EQ(db.sent[0].params, P({"9", im.url, im.sha256, im.file_path, "5000", "640", "480", "jpeg", "image/jpeg",
                                  "http://a.test/", "200", "my cat.jpg", "4097", "w1", none, none, none, none}));
  EXPECT_EQ(db.sent[0].key, 4097u);
  EXPECT_EQ(db.sent[0].lock_order, 9);
  // The response's validators: as received when they can go back into a
  // request header, else left out (NULL), the image kept all the same.
  im.etag = "W/\"5e-17\"";
  im.last_modified = "Wed, 21 Oct 2015 07:28:00 GMT";
  api.record_image(im, [](const CallStatus&) {});
  EXPECT_EQ(db.sent[1].params[14], Param{"W/\"5e-17\""});
  EXPECT_EQ(db.sent[1].params[15], Param{"Wed, 21 Oct 2015 07:28:00 GMT"});
  im.etag = "\"a\"\r\nSet-Cookie: x=1";
  im.last_modified = std::string(1025, 'x');
  api.record_image(im, [](const CallStatus&) {});
  EXPECT_EQ(db.sent[2].params[14], none);
  EXPECT_EQ(db.sent[2].params[15], none);
  // Thumbnails go as their JSON; why they could not be made, on one line.
  im.thumbnails_json = R"({"small": {"sha256": "b"}})";
  im.thumbnail_error = "thumbnail: corrupt\njpeg";
  api.record_image(im, [](const CallStatus&) {});
  EXPECT_EQ(db.sent[3].params[16], Param{im.thumbnails_json});
  ASSERT_TRUE(db.sent[3].params[17]);
  EXPECT_EQ(db.sent[3].params[17]->find('\n'), std::string::npos);
}

TEST(WriteApi, ImageUnchangedCompletesTheItemAndSaysWhetherTheRowIsThere) {
  Recorder db;
  WriteApi api(db, "w1", 60);
  std::optional<bool> known;
  api.image_unchanged(17, 9, "http://a.test/x.png", true, [&](const CallStatus&, bool k) { known = k; });
  ASSERT_EQ(db.sent.size(), 1u);
  EXPECT_EQ(db.sent[0].stmt, Stmt::image_unchanged);
  EXPECT_EQ(db.sent[0].params, P({"9", "http://a.test/x.png", "true", "17", "w1"}));
  EXPECT_EQ(db.sent[0].key, 17u);
  api.image_unchanged(18, 9, "http://a.test/y.png", false, [](const CallStatus&, bool) {});
  EXPECT_EQ(db.sent[1].params[2], Param{"false"});
  db.sent[0].done(rows({"id"}, {{"5"}}));
  EXPECT_EQ(known, std::optional<bool>(true));
  db.sent[0].done(rows({"id"}, {{std::nullopt}}));  // the images row is gone
  EXPECT_EQ(known, std::optional<bool>(false));
}

TEST(WriteApi, AClaimBringsWhatTheImagesTableKnows) {
  Recorder db;
  WriteApi api(db, "w1", 60);
  std::vector<ClaimedItem> got;
  api.claim(2, [&](const CallStatus&, std::vector<ClaimedItem> items) { got = std::move(items); });
  db.sent[0].done(rows({"item_id", "session_id", "url", "kind", "depth", "attempts", "found_on", "known_etag",
                        "known_last_modified", "known_fresh"},
                       {{"1", "9", "http://a.test/x.png", "image", "1", "1", "http://a.test/", "\"e\"",
                         "Wed, 21 Oct 2015 07:28:00 GMT", "f"},
                        {"2", "9", "http://a.test/y.png", "image", "1", "1", "http://a.test/", std::nullopt,
                         std::nullopt, "t"}}));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].known_etag, "\"e\"");
  EXPECT_EQ(got[0].known_last_modified, "Wed, 21 Oct 2015 07:28:00 GMT");
  EXPECT_FALSE(got[0].known_fresh);
  EXPECT_EQ(got[1].known_etag, "");
  EXPECT_TRUE(got[1].known_fresh);
}

TEST(WriteApi, RecordImageLeavesOutWhatItCannotRecord) {
  Recorder db;
  WriteApi api(db, "w1", 60);
  ImageRecord im;
  im.url = "http://a.test/";  // no file name
  im.content_type = "image/\x01png";  // not printable: unknown, not refused
  api.record_image(im, [](const CallStatus&) {});
  EXPECT_EQ(db.sent[0].params[8], Param{});   // content_type
  EXPECT_EQ(db.sent[0].params[9], Param{});   // found_on
  EXPECT_EQ(db.sent[0].params[11], Param{});  // filename
}

TEST(WriteApi, LinksOfManyPagesAreFourArraysOfOneLength) {
  Recorder db;
  WriteApi api(db, "w1", 60);
  LinkBatch b(3);
  b.add("http://a.test/\"q\"", "page", 2, "http://a.test/");
  b.add("http://a.test/x.png", "image", 2, "http://a.test/b\\c");
  EXPECT_EQ(b.size(), 2u);
  std::uint64_t queued = 0;
  api.enqueue_many(b, [&](const CallStatus& st, std::uint64_t n) {
    EXPECT_TRUE(st.ok);
    queued = n;
  });
  ASSERT_EQ(db.sent.size(), 1u);
  EXPECT_EQ(db.sent[0].stmt, Stmt::crawl_enqueue_many);
  EXPECT_EQ(db.sent[0].params,
            P({"3", "{\"http://a.test/\\\"q\\\"\",\"http://a.test/x.png\"}", "{\"page\",\"image\"}", "{2,2}",
               "{\"http://a.test/\",\"http://a.test/b\\\\c\"}"}));
  EXPECT_EQ(db.sent[0].key, 0u);  // the claims' connection: the next claim sees them
  EXPECT_EQ(db.sent[0].lock_order, 3);
  db.sent[0].done(rows({"queued"}, {{"2"}}));
  EXPECT_EQ(queued, 2u);
}

TEST(WriteApi, ANulByteFailsTheCallUnsentAsTheServerWould) {
  Recorder db;
  WriteApi api(db, "w1", 60);
  LinkBatch b(3);
  b.add(std::string("http://a.test/\0", 15), "page", 1, "http://a.test/");
  CallStatus got;
  api.enqueue_many(b, [&](const CallStatus& st, std::uint64_t) { got = st; });
  api.enqueue(3, {std::string("x\0", 2)}, 1, "page", "http://a.test/", [&](const CallStatus&, std::uint64_t) {});
  api.start_crawl({std::string("http://a.test/\0", 15)}, "{}", [&](const CallStatus&, std::int64_t) {});
  EXPECT_TRUE(db.sent.empty());
  ASSERT_EQ(db.answered.size(), 3u);  // answered later, on the loop, not inside the call
  EXPECT_FALSE(got.ok);
  db.answered[0].first(std::move(db.answered[0].second));
  EXPECT_FALSE(got.ok);
  EXPECT_EQ(got.sqlstate, "22021");
}

TEST(WriteApi, StartIsNeverSentTwice) {
  Recorder db;
  WriteApi api(db, "w1", 60);
  std::int64_t session = 0;
  api.start_crawl({"http://a.test/"}, "{\"max_depth\": 1}", [&](const CallStatus&, std::int64_t s) { session = s; });
  ASSERT_EQ(db.sent.size(), 1u);
  EXPECT_FALSE(db.sent[0].idempotent);
  EXPECT_EQ(db.sent[0].params, P({"{\"http://a.test/\"}", "{\"max_depth\": 1}"}));
  db.sent[0].done(rows({"session"}, {{"12"}}));
  EXPECT_EQ(session, 12);
}

TEST(WriteApi, RenewAndReleaseSendIdArrays) {
  Recorder db;
  WriteApi api(db, "w1", 90);
  std::optional<long long> renewed;
  api.renew({1, 1025}, [&](const CallStatus&, std::optional<long long> n) { renewed = n; });
  api.release({1025}, [](const CallStatus&) {});
  EXPECT_EQ(db.sent[0].params, P({"w1", "{1,1025}", "90 seconds"}));
  EXPECT_EQ(db.sent[1].params, P({"w1", "{1025}"}));
  db.sent[0].done(rows({"renewed"}, {{"1"}}));
  EXPECT_EQ(renewed, 1);
}

TEST(WriteApi, HostSettingsAreIntervalsAndTimestamps) {
  Recorder db;
  WriteApi api(db, "w1", 60);
  api.set_host_robots("a.test:8080", 0.25, std::string("User-agent: *\0", 14), [](const CallStatus&) {});
  api.set_host_robots("b.test", std::nullopt, "", [](const CallStatus&) {});
  api.set_host_back_off("c.test", 1700000000, [](const CallStatus&) {});
  EXPECT_EQ(db.sent[0].params, P({"a.test:8080", "0.250000 seconds", "User-agent: *?", Param{}}));
  EXPECT_EQ(db.sent[1].params, P({"b.test", Param{}, "", Param{}}));
  EXPECT_EQ(db.sent[2].params, P({"c.test", Param{}, Param{}, "2023-11-14 22:13:20+00"}));
}

TEST(WriteApi, SessionSettingsComeTypedOrWithTheReasonTheyCannot) {
  Recorder db;
  WriteApi api(db, "w1", 60);
  std::vector<WriteApi::SettingsRow> got;
  api.session_settings(std::nullopt, [&](const CallStatus&, std::vector<WriteApi::SettingsRow> r) { got = std::move(r); });
  EXPECT_EQ(db.sent[0].params, P({Param{}}));  // every running session
  db.sent[0].done(rows({"id", "status"}, {{"1", "running"}}));
  ASSERT_EQ(got.size(), 1u);
  ASSERT_TRUE(std::holds_alternative<std::string>(got[0]));
}

TEST(WriteApi, StatusCountsAreReadByName) {
  Recorder db;
  WriteApi api(db, "w1", 60);
  std::optional<SessionStatus> got;
  api.crawl_status(4, [&](const CallStatus&, std::optional<SessionStatus> s) { got = s; });
  db.sent[0].done(rows({"status", "pages_fetched", "images_stored", "queued"}, {{"finished", "10", "20", Param{}}}));
  ASSERT_TRUE(got);
  EXPECT_EQ(got->status, "finished");
  EXPECT_EQ(got->pages_fetched, 10);
  EXPECT_EQ(got->images_stored, 20);
  EXPECT_EQ(got->queued, 0);
}

TEST(WriteApi, ARedirectsScopeIsTheExtensionsAnswer) {
  Recorder db;
  WriteApi api(db, "w1", 60);
  std::vector<std::pair<bool, bool>> got;  // (ok, allowed)
  auto keep = [&](const CallStatus& st, bool allowed) { got.emplace_back(st.ok, allowed); };
  api.redirect_allowed(7, "http://cdn.test/a.png", "image", keep);
  api.redirect_allowed(7, "http://other.test/", "page", keep);
  api.redirect_allowed(7, "http://x.test/\x7f", "page", keep);
  ASSERT_EQ(db.sent.size(), 3u);
  EXPECT_EQ(db.sent[0].stmt, Stmt::redirect_allowed);
  EXPECT_EQ(db.sent[0].params, P({"7", "http://cdn.test/a.png", "image"}));
  db.sent[0].done(rows({"allowed"}, {{"t"}}));
  db.sent[1].done(rows({"allowed"}, {{"f"}}));
  DbResult refused;
  refused.sqlstate = "22023";
  refused.error = "invalid url";
  db.sent[2].done(std::move(refused));
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], std::make_pair(true, true));
  EXPECT_EQ(got[1], std::make_pair(true, false));
  EXPECT_EQ(got[2], std::make_pair(false, false));  // refused: never allowed
}

TEST(WriteApi, TheBlobTargetIsThePrimarysAgentReadByName) {
  Recorder db;
  WriteApi api(db, "w1", 60);
  std::vector<std::pair<CallStatus, std::optional<BlobTarget>>> got;
  auto keep = [&](const CallStatus& st, std::optional<BlobTarget> t) { got.emplace_back(st, std::move(t)); };
  api.blob_target(keep);
  api.blob_target(keep);
  api.blob_target(keep);
  ASSERT_EQ(db.sent.size(), 3u);
  EXPECT_EQ(db.sent[0].stmt, Stmt::crawl_blob_target);
  EXPECT_TRUE(db.sent[0].params.empty());
  EXPECT_TRUE(db.sent[0].idempotent);  // a read: sent again after a reconnect
  EXPECT_EQ(db.sent[0].key, 0u);
  // columns in another order: read by name
  db.sent[0].done(rows({"sync_timeout_ms", "agent_url", "replication_mode"}, {{"10000", "https://10.0.0.5:8000", "sync"}}));
  DbResult no_agent;
  no_agent.sqlstate = "55000";
  no_agent.error = "node a has no agent";
  db.sent[1].done(std::move(no_agent));
  db.sent[2].done(rows({"agent_url", "replication_mode", "sync_timeout_ms"}, {{Param{}, "async", "0"}}));
  ASSERT_EQ(got.size(), 3u);
  EXPECT_TRUE(got[0].first.ok);
  ASSERT_TRUE(got[0].second);
  EXPECT_EQ(got[0].second->agent_url, "https://10.0.0.5:8000");
  EXPECT_EQ(got[0].second->replication_mode, "sync");
  EXPECT_EQ(got[0].second->sync_timeout_ms, 10000);
  EXPECT_FALSE(got[1].first.ok);
  EXPECT_EQ(got[1].first.sqlstate, "55000");
  EXPECT_FALSE(got[1].second);
  EXPECT_FALSE(got[2].first.ok);  // no URL is no target
  EXPECT_EQ(got[2].first.sqlstate, "55000");
  EXPECT_FALSE(got[2].second);
}
