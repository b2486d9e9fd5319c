#include <gtest/gtest.h>

#include "crawler/link_batcher.hpp"

using namespace crawler;

namespace {

class Recorder : public DbCaller {
 public:
  struct Sent {
    Stmt stmt;
    std::vector<Param> params;
    Callback done;
  };
  void call(Stmt s, std::vector<Param> params, Callback done, bool, std::uint64_t, std::int64_t) override {
    sent.push_back({s, std::move(params), std::move(done)});
  }
  void answer(Callback done, DbResult&& r) override { done(std::move(r)); }
  std::size_t pending() const override { return sent.size(); }
  std::vector<Sent> sent;
};

DbResult queued(const char* n) {
  DbResult r;
  r.ok = true;
  r.columns = {"queued"};
  r.rows = {{n}};
  return r;
}

PageLinks page(std::int64_t item, std::int64_t session, std::vector<std::string> pages,
               std::vector<std::string> images = {}) {
  PageLinks p;
  p.item = item;
  p.session = session;
  p.depth = 1;
  p.url = "http://a.test/" + std::to_string(item);
  p.pages = std::move(pages);
  p.images = std::move(images);
  return p;
}

struct Seen {
  std::vector<std::int64_t> done;
  std::uint64_t queued = 0;
  int answers = 0;
  std::vector<std::string> early_gone;  // URLs never to be leased here, per early-lease answer
  std::vector<std::int64_t> early_leased;
};

LinkBatcher::Hooks hooks(Seen& seen) {
  return {[&seen](std::uint64_t n) { seen.queued += n; },
          [&seen](const PageLinks& p) { seen.done.push_back(p.item); }, [&seen] { ++seen.answers; },
          [&seen](std::int64_t, std::vector<ClaimedItem>&& leased, const std::vector<std::string>& gone) {
            seen.early_gone.insert(seen.early_gone.end(), gone.begin(), gone.end());
            for (const auto& c : leased) seen.early_leased.push_back(c.id);
          }};
}

}  // namespace

TEST(LinkBatcher, AUrlIsSentOncePerSessionAtItsShallowestDepth) {
  Recorder db;
  WriteApi api(db, "w", 60);
  Seen seen;
  LinkBatcher b(api, hooks(seen));
  EXPECT_EQ(b.unsent(1, 2, {"u1", "u2"}, "page"), (std::vector<std::string>{"u1", "u2"}));
  EXPECT_TRUE(b.unsent(1, 2, {"u1"}, "page").empty());                         // again: not sent
  EXPECT_TRUE(b.unsent(1, 3, {"u1"}, "page").empty());                         // deeper: not sent
  EXPECT_EQ(b.unsent(1, 1, {"u1"}, "page"), (std::vector<std::string>{"u1"}));  // shallower: sent
  EXPECT_EQ(b.unsent(1, 2, {"u1"}, "image"), (std::vector<std::string>{"u1"}));  // another kind
  EXPECT_EQ(b.unsent(2, 2, {"u1"}, "page"), (std::vector<std::string>{"u1"}));   // another session
}

TEST(LinkBatcher, PagesParsedWhileACallIsOutGoInTheNextOne) {
  Recorder db;
  WriteApi api(db, "w", 60);
  Seen seen;
  LinkBatcher b(api, hooks(seen));
  b.add(page(10, 1, {"p1"}));
  b.add(page(11, 1, {"p2"}, {"i1"}));
  b.add(page(12, 1, {"p3"}));
  ASSERT_EQ(db.sent.size(), 1u);  // one call at a time
  db.sent[0].done(queued("1"));
  EXPECT_EQ(seen.done, (std::vector<std::int64_t>{10}));
  ASSERT_EQ(db.sent.size(), 2u);  // the two pages parsed meanwhile, together
  EXPECT_EQ(db.sent[1].stmt, Stmt::crawl_enqueue_many);
  // pages before images
  EXPECT_EQ(db.sent[1].params[1], "{\"p2\",\"p3\",\"i1\"}");
  EXPECT_EQ(db.sent[1].params[2], "{\"page\",\"page\",\"image\"}");
  EXPECT_EQ(db.sent[1].params[4], "{\"http://a.test/11\",\"http://a.test/12\",\"http://a.test/11\"}");
  db.sent[1].done(queued("3"));
  EXPECT_EQ(seen.done, (std::vector<std::int64_t>{10, 11, 12}));
  EXPECT_EQ(seen.queued, 4u);
  EXPECT_EQ(seen.answers, 2);
}

TEST(LinkBatcher, EarlyFetchedLinksAreLeasedRightBehindTheirEnqueue) {
  Recorder db;
  WriteApi api(db, "w", 60);
  Seen seen;
  LinkBatcher b(api, hooks(seen));
  b.add(page(10, 1, {"p1"}));  // a call out: the next pages wait
  PageLinks second = page(11, 1, {"p2", "p3"}, {"i1"});
  second.early = {"p2", "i1"};
  b.add(std::move(second));
  ASSERT_EQ(db.sent.size(), 1u);  // no early lease before its links are sent
  db.sent[0].done(queued("1"));
  ASSERT_EQ(db.sent.size(), 3u);
  EXPECT_EQ(db.sent[1].stmt, Stmt::crawl_enqueue_many);
  EXPECT_EQ(db.sent[2].stmt, Stmt::crawl_lease_early);  // behind the enqueue of the same links
  EXPECT_EQ(db.sent[2].params[0], "w");
  EXPECT_EQ(db.sent[2].params[1], "1");
  EXPECT_EQ(db.sent[2].params[2], "{\"p2\",\"i1\"}");
  DbResult leased;
  leased.ok = true;
  leased.columns = {"item_id", "session_id", "url", "kind", "depth", "attempts", "found_on"};
  leased.rows = {{"77", "1", "p2", "page", "2", "1", "http://a.test/11"},
                 {Param{}, "1", "i1", Param{}, Param{}, Param{}, Param{}}};  // taken by another worker
  db.sent[2].done(std::move(leased));
  EXPECT_EQ(seen.early_gone, (std::vector<std::string>{"i1"}));
  EXPECT_EQ(seen.early_leased, (std::vector<std::int64_t>{77}));
  // a failed early lease is an answer too: its fetches are dropped
  PageLinks third = page(12, 1, {"p4"});
  third.early = {"p4"};
  db.sent[1].done(queued("3"));
  b.add(std::move(third));
  ASSERT_EQ(db.sent.size(), 5u);
  DbResult failed;
  failed.sqlstate = "42883";
  db.sent[4].done(std::move(failed));
  EXPECT_EQ(seen.early_gone.back(), "p4");
  EXPECT_EQ(seen.early_leased.size(), 1u);
}

TEST(LinkBatcher, ARefusedBatchIsSentAgainPageByPage) {
  Recorder db;
  WriteApi api(db, "w", 60);
  Seen seen;
  LinkBatcher b(api, hooks(seen));
  b.add(page(10, 1, b.unsent(1, 1, {"p1"}, "page"), b.unsent(1, 1, {"i1"}, "image")));
  DbResult refused;
  refused.sqlstate = "22023";
  refused.error = "bad";
  db.sent[0].done(std::move(refused));
  ASSERT_EQ(db.sent.size(), 3u);  // crawl_enqueue: the pages, then the images
  EXPECT_EQ(db.sent[1].stmt, Stmt::crawl_enqueue);
  EXPECT_EQ(db.sent[1].params[1], "{\"p1\"}");
  EXPECT_EQ(db.sent[1].params[3], "page");
  EXPECT_EQ(db.sent[2].params[3], "image");
  db.sent[1].done(queued("1"));
  EXPECT_TRUE(seen.done.empty());  // completed after both answers
  DbResult refused_again;
  refused_again.sqlstate = "22023";
  db.sent[2].done(std::move(refused_again));
  EXPECT_EQ(seen.done, (std::vector<std::int64_t>{10}));
  // a link the database refused may be sent again by a later page
  EXPECT_EQ(b.unsent(1, 1, {"i1"}, "image"), (std::vector<std::string>{"i1"}));
  EXPECT_TRUE(b.unsent(1, 1, {"p1"}, "page").empty());
}

TEST(LinkBatcher, SessionsGoInCallsOfTheirOwn) {
  Recorder db;
  WriteApi api(db, "w", 60);
  Seen seen;
  LinkBatcher b(api, hooks(seen));
  b.add(page(10, 1, {"p1"}));
  b.add(page(20, 2, {"p2"}));
  b.add(page(11, 1, {"p3"}));
  db.sent[0].done(queued("1"));
  ASSERT_EQ(db.sent.size(), 3u);
  EXPECT_EQ(db.sent[1].params[0], "2");
  EXPECT_EQ(db.sent[2].params[0], "1");
}
