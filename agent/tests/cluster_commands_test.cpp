// The one string clients use for the cluster (crawler-ha uri): built from
// the nodes the commands are given, read back by libpq as the same servers
// and settings, whatever the values hold.
#include <gtest/gtest.h>

#include <stdexcept>

#include "crawler/agent/cluster_nodes.hpp"

using namespace crawler::agent;

namespace {

// What libpq reads back from a client string: the servers and settings
// that split_nodes() finds in it.
void expect_same_servers(const std::vector<NodeTarget>& want, const std::vector<NodeTarget>& got) {
  ASSERT_EQ(want.size(), got.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(want[i].host, got[i].host) << i;
    EXPECT_EQ(want[i].hostaddr, got[i].hostaddr) << i;
    EXPECT_EQ(want[i].port, got[i].port) << i;
    for (const auto& [k, v] : want[i].settings) {
      if (k == "password" || k == "sslpassword") continue;
      ASSERT_TRUE(got[i].settings.count(k)) << k;
      EXPECT_EQ(v, got[i].settings.at(k)) << k;
    }
  }
}

}  // namespace

TEST(ClientConninfo, JoinsTheServersOfOneMultiHostString) {
  auto nodes = split_nodes({"host=db1,db2 port=5432,5433 dbname=crawl user=crawler"});
  EXPECT_EQ(client_conninfo(nodes),
            "host=db1,db2 port=5432,5433 dbname=crawl user=crawler connect_timeout=2 target_session_attrs=read-write");
}

TEST(ClientConninfo, JoinsRepeatedStrings) {
  auto nodes = split_nodes({"host=a port=1 dbname=x", "host=b port=2 dbname=x"});
  EXPECT_EQ(client_conninfo(nodes), "host=a,b port=1,2 dbname=x connect_timeout=2 target_session_attrs=read-write");
}

TEST(ClientConninfo, KeepsTheSettingsTheStringsGive) {
  auto nodes = split_nodes({"host=a,b port=1,2 target_session_attrs=primary connect_timeout=9 sslmode=verify-full"});
  std::string s = client_conninfo(nodes);
  EXPECT_NE(s.find("target_session_attrs=primary"), std::string::npos) << s;
  EXPECT_NE(s.find("connect_timeout=9"), std::string::npos) << s;
  EXPECT_NE(s.find("sslmode=verify-full"), std::string::npos) << s;
  EXPECT_EQ(s.find("read-write"), std::string::npos) << s;
}

TEST(ClientConninfo, NeverShowsAPassword) {
  auto nodes = split_nodes({"host=a,b port=1,2 user=u password=s3cret sslpassword=k3y"});
  EXPECT_EQ(client_conninfo(nodes).find("s3cret"), std::string::npos);
  EXPECT_EQ(client_conninfo(nodes).find("k3y"), std::string::npos);
  EXPECT_EQ(client_uri(nodes).find("s3cret"), std::string::npos);
  EXPECT_EQ(client_uri(nodes).find("password"), std::string::npos);
}

TEST(ClientConninfo, HostileValuesComeBackUnchanged) {
  auto nodes = split_nodes({"host='/run/my sockets,db2' port=5432,5433 dbname='it\\'s \\\\ a, b' "
                            "user='o\\'hara' application_name='two words, one comma' "
                            "options='-c search_path=a,b -c statement_timeout=5s'"});
  ASSERT_EQ(nodes.size(), 2u);
  EXPECT_EQ(nodes[0].host, "/run/my sockets");
  EXPECT_EQ(nodes[0].settings.at("user"), "o'hara");
  std::string s = client_conninfo(nodes);
  auto again = split_nodes({s});
  expect_same_servers(nodes, again);
  EXPECT_EQ(again[1].settings.at("dbname"), nodes[0].settings.at("dbname")) << s;
  EXPECT_EQ(again[1].settings.at("options"), "-c search_path=a,b -c statement_timeout=5s") << s;
}

TEST(ClientConninfo, KeepsHostAddressesAndEmptyPorts) {
  auto nodes = split_nodes({"postgresql://db1,db2:6000/crawl?hostaddr=10.0.0.1,10.0.0.2"});
  std::string s = client_conninfo(nodes);
  EXPECT_NE(s.find("hostaddr=10.0.0.1,10.0.0.2"), std::string::npos) << s;
  EXPECT_NE(s.find("port=,6000"), std::string::npos) << s;
  expect_same_servers(nodes, split_nodes({s}));
}

TEST(ClientConninfo, RefusesStringsThatDiffer) {
  EXPECT_THROW(client_conninfo(split_nodes({"host=a dbname=x", "host=b dbname=y"})), std::invalid_argument);
  EXPECT_THROW(client_uri(split_nodes({"host=a user=x", "host=b"})), std::invalid_argument);
  EXPECT_THROW(client_conninfo(split_nodes({"host=a sslmode=require", "host=b"})), std::invalid_argument);
}

TEST(ClientConninfo, WithoutAServerSaysOnlyTheSettings) {
  EXPECT_EQ(client_conninfo(split_nodes({})), "connect_timeout=2 target_session_attrs=read-write");
}

TEST(PercentEncode, LeavesOnlyUnreservedCharacters) {
  EXPECT_EQ(percent_encode("AZaz09-._~"), "AZaz09-._~");
  EXPECT_EQ(percent_encode("a b/c:d@e%f+g,h?i&j=k#l'm\"n\\o"),
            "a%20b%2Fc%3Ad%40e%25f%2Bg%2Ch%3Fi%26j%3Dk%23l%27m%22n%5Co");
  EXPECT_EQ(percent_encode("\xC3\xA9"), "%C3%A9");  // é in UTF-8: each byte
  EXPECT_EQ(percent_encode(""), "");
}

TEST(ClientUri, NamesTheServersInTheAuthority) {
  auto nodes = split_nodes({"host=db1,db2 port=5432,5433 dbname=crawl user=crawler sslmode=require"});
  EXPECT_EQ(client_uri(nodes),
            "postgresql://crawler@db1:5432,db2:5433/crawl?connect_timeout=2&sslmode=require"
            "&target_session_attrs=read-write");
}

TEST(ClientUri, HostileValuesComeBackUnchanged) {
  auto nodes = split_nodes({"host='/run/my sockets,::1,db3' port=5432,5433,5434 dbname='a/b?c#d e' "
                            "user='us@er:x' application_name='x&y=z+1 %41' options='-c search_path=a,b'"});
  ASSERT_EQ(nodes.size(), 3u);
  std::string u = client_uri(nodes);
  EXPECT_EQ(u.find(' '), std::string::npos) << u;
  auto again = split_nodes({u});
  expect_same_servers(nodes, again);
  EXPECT_EQ(again[0].settings.at("application_name"), "x&y=z+1 %41") << u;
  EXPECT_EQ(again[0].settings.at("dbname"), "a/b?c#d e") << u;
  EXPECT_EQ(again[0].settings.at("target_session_attrs"), "read-write") << u;
}

TEST(ClientUri, WithoutDatabaseOrUser) {
  auto nodes = split_nodes({"host=a,b port=1,2"});
  EXPECT_EQ(client_uri(nodes), "postgresql://a:1,b:2?connect_timeout=2&target_session_attrs=read-write");
  expect_same_servers(nodes, split_nodes({client_uri(nodes)}));
}
