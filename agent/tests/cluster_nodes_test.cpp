// The nodes a cluster command is given: one connection string per server,
// whatever form the user wrote them in.
#include <gtest/gtest.h>

#include <stdexcept>

#include "crawler/agent/cluster_nodes.hpp"

using namespace crawler::agent;

TEST(SplitNodes, AMultiHostStringBecomesOneNodePerServer) {
  auto n = split_nodes({"host=db1,db2 port=5432,5433 dbname=crawl user=crawler target_session_attrs=read-write "
                        "connect_timeout=2"});
  ASSERT_EQ(n.size(), 2u);
  EXPECT_EQ(n[0].label, "db1:5432");
  EXPECT_EQ(n[1].label, "db2:5433");
  EXPECT_NE(n[0].conninfo.find("host='db1'"), std::string::npos) << n[0].conninfo;
  EXPECT_NE(n[1].conninfo.find("port='5433'"), std::string::npos) << n[1].conninfo;
  EXPECT_NE(n[1].conninfo.find("dbname='crawl'"), std::string::npos);
  EXPECT_NE(n[1].conninfo.find("connect_timeout='2'"), std::string::npos);
  EXPECT_EQ(n[0].conninfo.find("target_session_attrs"), std::string::npos) << "each node is asked, writable or not";
}

TEST(SplitNodes, OnePortForAllHostsAndUris) {
  auto n = split_nodes({"postgresql://db1,db2:6000/crawl?sslmode=verify-full"});
  ASSERT_EQ(n.size(), 2u);
  // libpq reads "db1,db2:6000" as the ports "" (the default) and 6000.
  EXPECT_EQ(n[0].label, "db1");
  EXPECT_EQ(n[1].label, "db2:6000");
  EXPECT_NE(n[1].conninfo.find("sslmode='verify-full'"), std::string::npos);
  auto m = split_nodes({"host=a,b,c port=7"});
  ASSERT_EQ(m.size(), 3u);
  EXPECT_EQ(m[2].label, "c:7");
}

TEST(SplitNodes, RepeatedStringsAddUp) {
  auto n = split_nodes({"host=a port=1", "host=b port=2"});
  ASSERT_EQ(n.size(), 2u);
  EXPECT_EQ(n[1].label, "b:2");
}

TEST(SplitNodes, QuotesHostileValues) {
  auto n = split_nodes({"host=a password='it\\'s x\\\\y' port=1"});
  ASSERT_EQ(n.size(), 1u);
  // Reparsed, the value is the same: quote and backslash escaped.
  auto again = split_nodes({n[0].conninfo});
  EXPECT_EQ(again[0].conninfo, n[0].conninfo);
}

TEST(SplitNodes, RefusesWhatLibpqRefuses) {
  EXPECT_THROW(split_nodes({"host=a port=1,2,3 hostaddr=1.2.3.4,5.6.7.8"}), std::invalid_argument);
  EXPECT_THROW(split_nodes({"nonsense_keyword=1"}), std::invalid_argument);
  EXPECT_THROW(split_nodes({"host='unterminated"}), std::invalid_argument);
}

TEST(SplitNodes, NoneIsLibpqsDefault) {
  auto n = split_nodes({});
  ASSERT_EQ(n.size(), 1u);
}
