// crawler-worker export: what it writes (CSV fields against hostile text,
// JSON rows, the webdataset's names, the tar shard read back), and its
// options, each mistake explained.
#include <archive.h>
#include <archive_entry.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "crawler/export_files.hpp"
#include "crawler/export_format.hpp"
#include "crawler/options.hpp"

using crawler::Param;

namespace {

// One image row as image_list() answers it, every column as text.
crawler::DbResult one_row(std::map<std::string, Param> changes = {}) {
  std::map<std::string, Param> v = {
      {"id", "42"},
      {"url", "http://a.test/i.png"},
      {"sha256", std::string(64, 'a')},
      {"file_path", "aa/aa/" + std::string(64, 'a') + ".png"},
      {"file_size", "1234"},
      {"width", "10"},
      {"height", Param{}},
      {"format", "png"},
      {"content_type", "image/png"},
      {"found_on", "http://a.test/"},
      {"session_id", "7"},
      {"http_status", "200"},
      {"created_at", "2026-01-02T03:04:05.000006Z"},
      {"updated_at", "2026-01-02T03:04:05.000006Z"},
      {"etag", "\"v1\""},
      {"last_modified", Param{}},
      {"checked_at", "2026-01-02T03:04:05.000006Z"},
      {"thumbnails", Param{}},
      {"filename", "i.png"}};
  for (auto& [k, val] : changes) v[k] = val;
  crawler::DbResult r;
  r.ok = true;
  r.rows.emplace_back();
  for (auto& [k, val] : v) {
    r.columns.push_back(k);
    r.rows[0].push_back(val);
  }
  return r;
}

// The message of the error parse() throws, "" when it accepts.
std::string refusal(std::vector<const char*> args) {
  args.insert(args.begin(), "crawler-worker");
  try {
    crawler::parse_command_line(static_cast<int>(args.size()), args.data());
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

crawler::Command parse(std::vector<const char*> args) {
  args.insert(args.begin(), "crawler-worker");
  return crawler::parse_command_line(static_cast<int>(args.size()), args.data());
}

// A fresh directory under the temporary directory, removed with the object.
struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/crawler-export-test-XXXXXX";
    path = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string path;
};

}  // namespace

TEST(ExportCsv, PlainFieldsAreNotQuoted) {
  EXPECT_EQ(crawler::csv_field(Param{"http://a.test/i.png"}), "http://a.test/i.png");
  EXPECT_EQ(crawler::csv_field(Param{"42"}), "42");
}

TEST(ExportCsv, NullIsEmptyAndTheEmptyStringIsQuoted) {
  EXPECT_EQ(crawler::csv_field(Param{}), "");
  EXPECT_EQ(crawler::csv_field(Param{""}), "\"\"");
}

TEST(ExportCsv, HostileTextIsQuotedWithItsQuotesDoubled) {
  EXPECT_EQ(crawler::csv_field(Param{"a,b"}), "\"a,b\"");
  EXPECT_EQ(crawler::csv_field(Param{"say \"hi\""}), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(crawler::csv_field(Param{"\""}), "\"\"\"\"");
  EXPECT_EQ(crawler::csv_field(Param{"line\nbreak"}), "\"line\nbreak\"");
  EXPECT_EQ(crawler::csv_field(Param{"cr\rlf\r\n"}), "\"cr\rlf\r\n\"");
  EXPECT_EQ(crawler::csv_field(Param{" padded "}), "\" padded \"");
  EXPECT_EQ(crawler::csv_field(Param{"\",\"\n,"}), "\"\"\",\"\"\n,\"");
}

TEST(ExportCsv, NulBytesAndInvalidUtf8BecomeReplacementCharacters) {
  EXPECT_EQ(crawler::csv_field(Param{std::string("a\0b", 3)}), "a\xef\xbf\xbd" "b");
  EXPECT_EQ(crawler::csv_field(Param{"caf\xe9"}), "caf\xef\xbf\xbd");                     // Latin-1
  EXPECT_EQ(crawler::csv_field(Param{"\xc0\xaf"}), "\xef\xbf\xbd\xef\xbf\xbd");            // overlong
  EXPECT_EQ(crawler::csv_field(Param{"\xed\xa0\x80"}), "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");  // surrogate
  EXPECT_EQ(crawler::csv_field(Param{"\xe2\x82"}), "\xef\xbf\xbd");  // cut short: one replacement
  EXPECT_EQ(crawler::csv_field(Param{"\xe2\x82\xac,"}), "\"\xe2\x82\xac,\"");  // valid UTF-8 kept
  EXPECT_EQ(crawler::csv_field(Param{"\xf0\x9f\x98\x80"}), "\xf0\x9f\x98\x80");
}

TEST(ExportJson, ThumbnailsAreAnObjectInJsonAndTextInCsv) {
  const std::string thumbs = R"({"small": {"bytes": 900, "width": 50, "height": 38, "sha256": ")" +
                             std::string(64, 'b') + R"(", "file_path": "bb/bb/)" + std::string(64, 'b') + R"(.jpg"}})";
  auto page = one_row({{"thumbnails", thumbs}});
  nlohmann::ordered_json j = crawler::image_json(page, 0);
  ASSERT_TRUE(j["thumbnails"].is_object());
  EXPECT_EQ(j["thumbnails"]["small"]["width"], 50);
  EXPECT_EQ(j["thumbnails"]["small"]["sha256"], std::string(64, 'b'));
  EXPECT_TRUE(crawler::image_json(one_row(), 0)["thumbnails"].is_null());
  EXPECT_NE(crawler::csv_record(page, 0).find("\"{\"\"small\"\": {"), std::string::npos);
}

TEST(ExportCsv, HeaderAndRecordFollowTheColumnsWithCrlf) {
  EXPECT_EQ(crawler::csv_header(),
            "id,url,sha256,file_path,file_size,width,height,format,content_type,found_on,session_id,"
            "http_status,created_at,updated_at,etag,last_modified,checked_at,thumbnails,filename\r\n");
  std::string rec = crawler::csv_record(one_row({{"filename", "a,\"b\".png"}}), 0);
  EXPECT_EQ(rec.substr(0, 23), "42,http://a.test/i.png,");
  EXPECT_NE(rec.find(",1234,10,,png,"), std::string::npos) << rec;  // NULL height: an empty field
  EXPECT_EQ(rec.substr(rec.size() - 16), ",\"a,\"\"b\"\".png\"\r\n");
}

TEST(ExportJson, NumbersTextAndNullKeepTheirTypesInColumnOrder) {
  auto j = crawler::image_json(one_row(), 0);
  EXPECT_EQ(j.begin().key(), "id");
  EXPECT_EQ(j["id"], 42);
  EXPECT_EQ(j["file_size"], 1234);
  EXPECT_TRUE(j["height"].is_null());
  EXPECT_EQ(j["url"], "http://a.test/i.png");
  EXPECT_EQ(j["created_at"], "2026-01-02T03:04:05.000006Z");
  EXPECT_EQ(j.size(), crawler::export_columns().size());
  EXPECT_EQ(crawler::json_text(j).find('\n'), std::string::npos);  // one line of JSON lines
  EXPECT_EQ(crawler::json_text(j).rfind("{\"id\":42,\"url\":", 0), 0u) << crawler::json_text(j);
}

TEST(ExportJson, InvalidUtf8IsReplacedAndAMissingColumnIsNull) {
  crawler::DbResult r = one_row({{"url", "http://a.test/\xff\"\n"}});
  std::string line = crawler::json_text(crawler::image_json(r, 0));
  EXPECT_NE(line.find("http://a.test/\xef\xbf\xbd\\\"\\n"), std::string::npos) << line;
  crawler::DbResult partial;
  partial.ok = true;
  partial.columns = {"id"};
  partial.rows = {{Param{"5"}}};
  auto j = crawler::image_json(partial, 0);
  EXPECT_EQ(j["id"], 5);
  EXPECT_TRUE(j["url"].is_null());
}

TEST(ExportShards, KeysAreImg2datasetsShardAndIndex) {
  crawler::ShardNaming d(10000);
  EXPECT_EQ(d.shard_name(0), "00000");
  EXPECT_EQ(d.shard_name(12), "00012");
  EXPECT_EQ(d.key(0), "000000000");
  EXPECT_EQ(d.key(123), "000000123");
  EXPECT_EQ(d.key(10000), "000010000");  // shard 1, index 0
  EXPECT_EQ(d.shard_of(9999), 0);
  EXPECT_EQ(d.shard_of(10000), 1);
  crawler::ShardNaming three(3);  // one digit for the index
  EXPECT_EQ(three.key(0), "000000");
  EXPECT_EQ(three.key(2), "000002");
  EXPECT_EQ(three.key(3), "000010");
  EXPECT_EQ(three.key(7), "000021");
  EXPECT_EQ(three.shard_of(7), 2);
  crawler::ShardNaming one(1);
  EXPECT_EQ(one.key(4), "00004");
}

TEST(ExportShards, TheSampleExtensionIsTheStoresElseTheFormat) {
  EXPECT_EQ(crawler::sample_extension("ab/cd/x.JPG", Param{"jpeg"}), "jpg");
  EXPECT_EQ(crawler::sample_extension("ab/cd/x", Param{"webp"}), "webp");
  EXPECT_EQ(crawler::sample_extension("ab/c.d/x", Param{}), "bin");
  EXPECT_EQ(crawler::sample_extension("ab/cd/x.a/b", Param{"../x"}), "bin");
}

TEST(ExportShards, StatsCountFailures) {
  crawler::ExportStats s;
  s.count = 3;
  s.successes = 2;
  s.failures.push_back({"9", "http://a.test/x.png", std::string(64, 'b'), "missing"});
  auto j = s.to_json();
  EXPECT_EQ(j["failed_to_download"], 1);
  EXPECT_EQ(j["failures"][0]["error"], "missing");
}

TEST(ExportShards, ATarShardHoldsItsMembersAndAppearsOnlyWhenCommitted) {
  TempDir dir;
  const std::string path = dir.path + "/00000.tar";
  {
    crawler::TarShard shard(path, 1700000000);
    shard.add("000000000.png", std::string("\x89PNG\0\1", 6));
    shard.add("000000000.json", "{}");
    EXPECT_FALSE(std::filesystem::exists(path));
    shard.commit();
  }
  ASSERT_TRUE(std::filesystem::exists(path));
  archive* a = archive_read_new();
  archive_read_support_format_tar(a);
  ASSERT_EQ(archive_read_open_filename(a, path.c_str(), 10240), ARCHIVE_OK);
  std::vector<std::pair<std::string, long long>> members;
  archive_entry* e;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK)
    members.emplace_back(archive_entry_pathname(e), archive_entry_size(e));
  archive_read_free(a);
  std::vector<std::pair<std::string, long long>> want = {{"000000000.png", 6}, {"000000000.json", 2}};
  EXPECT_EQ(members, want);
  {
    crawler::TarShard abandoned(dir.path + "/00001.tar", 0);
    abandoned.add("x", "y");
  }
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path), {}), 1) << "no temporary file left";
}

TEST(ExportOptions, AJsonlExportNeedsNoStorage) {
  TempDir dir;
  const std::string out = dir.path + "/s.jsonl";
  auto c = parse({"export", "--db", "x", "--session", "3", "--format", "jsonl", "--output", out.c_str()});
  EXPECT_EQ(c.name, "export");
  EXPECT_EQ(*c.export_request.session, 3);
  EXPECT_EQ(c.export_request.shard_size, 10000);
  EXPECT_EQ(parse({"export", "--db", "x", "--session", "3", "--format", "csv", "--output", "-"}).export_request.output,
            "-");
}

TEST(ExportOptions, MistakesAreExplained) {
  TempDir dir;
  const std::string shards = dir.path + "/shards";
  auto has = [](const std::string& msg, const char* part) {
    return msg.find(part) != std::string::npos ? testing::AssertionSuccess()
                                               : testing::AssertionFailure() << "\"" << msg << "\" lacks \"" << part << "\"";
  };
  EXPECT_TRUE(has(refusal({"export", "--db", "x", "--format", "csv", "--output", "-"}), "--session"));
  EXPECT_TRUE(has(refusal({"export", "--db", "x", "--session", "1", "--output", "-"}), "--format"));
  EXPECT_TRUE(has(refusal({"export", "--db", "x", "--session", "1", "--format", "parquet", "--output", "-"}),
                  "\"parquet\" is not a format"));
  EXPECT_TRUE(has(refusal({"export", "--db", "x", "--session", "1", "--format", "csv"}), "--output"));
  EXPECT_TRUE(has(refusal({"export", "--db", "x", "--session", "1", "--format", "csv", "--output",
                           "/nonexistent-dir/x.csv"}),
                  "cannot write in /nonexistent-dir"));
  EXPECT_TRUE(has(refusal({"export", "--db", "x", "--session", "1", "--format", "csv", "--output", dir.path.c_str()}),
                  "a directory; give a file name"));
  EXPECT_TRUE(has(refusal({"export", "--db", "x", "--session", "1", "--format", "csv", "--output", "-",
                           "--shard-size", "5"}),
                  "--shard-size applies only with --format webdataset"));
  EXPECT_TRUE(has(refusal({"export", "--db", "x", "--session", "1", "--format", "webdataset", "--output",
                           shards.c_str()}),
                  "needs --storage DIR or --storage-agent"));
  EXPECT_TRUE(has(refusal({"export", "--db", "x", "--session", "1", "--format", "webdataset", "--output", "-",
                           "--storage", dir.path.c_str()}),
                  "not -"));
  EXPECT_TRUE(has(refusal({"export", "--db", "x", "--session", "1", "--format", "webdataset", "--output",
                           shards.c_str(), "--storage", dir.path.c_str(), "--shard-size", "0"}),
                  "--shard-size must be at least 1"));
  std::ofstream(dir.path + "/left-over") << "x";
  EXPECT_TRUE(has(refusal({"export", "--db", "x", "--session", "1", "--format", "webdataset", "--output",
                           dir.path.c_str(), "--storage", dir.path.c_str()}),
                  "not empty"));
  EXPECT_EQ(refusal({"export", "--db", "x", "--session", "1", "--format", "webdataset", "--output", shards.c_str(),
                     "--storage", dir.path.c_str(), "--shard-size", "3"}),
            "");
  EXPECT_TRUE(has(refusal({"export", "--db", "x", "--session", "1", "--format", "csv", "--output", "-", "--wide"}),
                  "--wide is an option of status, not of export"));
  EXPECT_TRUE(has(refusal({"export", "--db", "x", "--session", "1", "--format", "csv", "--output", "-",
                           "--concurrency", "3"}),
                  "--concurrency is an option of crawl and run, not of export"));
  EXPECT_TRUE(has(refusal({"export", "--db", "x", "--session", "1", "--fromat", "csv"}), "did you mean --format?"));
  EXPECT_TRUE(has(refusal({"crawl", "--db", "x", "--storage", "s", "--seed", "http://a.test/", "--format", "csv"}),
                  "--format is an option of export, not of crawl"));
}

TEST(ExportOptions, TheServicesConfigFileIsReadAsStatusReadsIt) {
  TempDir dir;
  const std::string conf = dir.path + "/worker.conf";
  std::ofstream(conf) << "db = dbname=crawl\nstorage = " << dir.path << "\nconcurrency = 4\nspool = /var/tmp/x\n";
  const std::string shards = dir.path + "/shards";
  auto c = parse({"export", "--config", conf.c_str(), "--session", "2", "--format", "webdataset", "--output",
                  shards.c_str()});
  EXPECT_EQ(c.worker.db, "dbname=crawl");
  EXPECT_EQ(c.worker.storage, dir.path);
}

TEST(ExportOptions, HelpHasTheOptionsAndExitStatuses) {
  auto c = parse({"export", "--help"});
  for (const char* part : {"--session", "--format", "--output", "--shard-size", "--storage", "--storage-agent",
                           "--agent-token-file", "Exit status:", "  3    interrupted"})
    EXPECT_NE(c.help_text.find(part), std::string::npos) << part;
  EXPECT_EQ(c.help_text.find("--concurrency"), std::string::npos);
  EXPECT_NE(parse({"--help"}).help_text.find("  export  "), std::string::npos);
}
