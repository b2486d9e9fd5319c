// Who may use the application port and how fast: the client allow-list
// and the per-client rate limiter, with hostile input.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "crawler/agent/server/client_networks.hpp"
#include "crawler/agent/server/rate_limiter.hpp"

using namespace crawler::agent;
using namespace std::chrono_literals;
namespace ip = boost::asio::ip;

namespace {

ip::address addr(const char* text) { return ip::make_address(text); }

ClientNetworks nets(const std::string& text) {
  std::string why;
  auto parsed = ClientNetworks::parse(text, &why);
  EXPECT_TRUE(parsed) << text << ": " << why;
  return parsed ? *parsed : *ClientNetworks::parse("all", &why);
}

// ---- ClientNetworks ----

TEST(ClientNetworks, ParsesV4V6BracketsAndSeparators) {
  auto n = nets("10.0.0.0/8, 127.0.0.1 ::1\tfd00::/8,[::2]/128,[::3]\n192.168.1.0/24");
  EXPECT_FALSE(n.allows_all());
  EXPECT_EQ(n.describe(), "10.0.0.0/8, 127.0.0.1/32, 192.168.1.0/24, ::1/128, fd00::/8, ::2/128, ::3/128");
}

TEST(ClientNetworks, EmptyOrAllAllowsEveryone) {
  for (const char* text : {"", "   ", "\t\n", "all", "ALL", " All "}) {
    auto n = nets(text);
    EXPECT_TRUE(n.allows_all()) << text;
    EXPECT_TRUE(n.allows(addr("203.0.113.9"))) << text;
    EXPECT_TRUE(n.allows(addr("2001:db8::1"))) << text;
    EXPECT_EQ(n.describe(), "all clients");
  }
}

TEST(ClientNetworks, HostBitsAreMaskedAndDuplicatesMerged) {
  auto n = nets("10.1.2.3/8 10.0.0.0/8 fd00::1/8 fd00::/8");
  EXPECT_EQ(n.describe(), "10.0.0.0/8, fd00::/8");
  EXPECT_TRUE(n.allows(addr("10.200.0.1")));
}

TEST(ClientNetworks, RefusesMalformedEntriesNamingThem) {
  for (const char* bad : {"10.0.0.0/33", "::/129", "1.2.3", "1.2.3.4/", "1.2.3.4//8", "1.2.3.4/8/8", "/8",
                          " , ", ",", ",,,", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/0008", "10.0.0.0/8x",
                          "x10.0.0.0/8", "10.0.0.0 /8", "010.0.0.1", "0x0a.0.0.1", "1.2.3.4.5", "256.0.0.0",
                          "example.com", "localhost", "fe80::1%eth0", "fe80::1%1", "[fe80::1%1]/64",
                          "[10.0.0.1]", "[::1", "::1]", "[::1]]", "[]", "[::1]/", "[[::1]]", "::1/128]",
                          "all, 10.0.0.0/8", "10.0.0.0/8 all", ":::", "1::2::3", "10.0.0.0/8;11.0.0.0/8",
                          "10.0.0.0/99999999999999999999999"}) {
    std::string why;
    EXPECT_FALSE(ClientNetworks::parse(bad, &why)) << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
  std::string why;
  EXPECT_FALSE(ClientNetworks::parse("10.0.0.0/8, 10.0.0.0/33, ::1", &why));
  EXPECT_NE(why.find("\"10.0.0.0/33\""), std::string::npos) << why;
}

TEST(ClientNetworks, RefusesNulsAndControlBytesWithoutEchoingThem) {
  std::string why;
  EXPECT_FALSE(ClientNetworks::parse(std::string("10.0.0.1\0/8", 11), &why));
  EXPECT_NE(why.find("\\x00"), std::string::npos) << why;
  EXPECT_FALSE(ClientNetworks::parse(std::string("10.0.0.1\0", 9), &why));
  EXPECT_FALSE(ClientNetworks::parse(std::string("\0", 1), &why));
  EXPECT_FALSE(ClientNetworks::parse("10.0.0.1\x1b[2J", &why));
  EXPECT_EQ(why.find('\x1b'), std::string::npos) << why;
  EXPECT_FALSE(ClientNetworks::parse("10.0.0.1\xff", &why));
}

TEST(ClientNetworks, HugeInputIsRefusedWithAShortError) {
  std::string why;
  EXPECT_FALSE(ClientNetworks::parse(std::string(10'000'000, '1'), &why));
  EXPECT_LT(why.size(), 300u);
  EXPECT_FALSE(ClientNetworks::parse("::" + std::string(1'000'000, '0') + "1", &why));
  EXPECT_LT(why.size(), 300u);

  std::string many;
  for (std::size_t i = 0; i < ClientNetworks::kMaxNetworks; ++i) many += "10.0.0.1,";
  EXPECT_TRUE(ClientNetworks::parse(many, &why)) << why;
  EXPECT_FALSE(ClientNetworks::parse(many + "10.0.0.2", &why));
  EXPECT_FALSE(ClientNetworks::parse(std::string(1'000'000, ','), &why));
  EXPECT_LT(why.size(), 300u);
}

TEST(ClientNetworks, MatchesPrefixesAtTheirEdges) {
  auto n = nets("10.0.0.0/8 192.168.1.128/25 fd00::/8 2001:db8:1::/48 ::1");
  EXPECT_TRUE(n.allows(addr("10.0.0.0")));
  EXPECT_TRUE(n.allows(addr("10.255.255.255")));
  EXPECT_FALSE(n.allows(addr("11.0.0.0")));
  EXPECT_FALSE(n.allows(addr("9.255.255.255")));
  EXPECT_TRUE(n.allows(addr("192.168.1.128")));
  EXPECT_FALSE(n.allows(addr("192.168.1.127")));
  EXPECT_TRUE(n.allows(addr("fdff:ffff::1")));
  EXPECT_FALSE(n.allows(addr("fe00::1")));
  EXPECT_TRUE(n.allows(addr("2001:db8:1:ffff::1")));
  EXPECT_FALSE(n.allows(addr("2001:db8:2::1")));
  EXPECT_TRUE(n.allows(addr("::1")));
  EXPECT_FALSE(n.allows(addr("::2")));
  EXPECT_FALSE(n.allows(addr("127.0.0.1")));
}

TEST(ClientNetworks, ZeroPrefixesCoverTheirFamily) {
  auto v4 = nets("0.0.0.0/0");
  EXPECT_TRUE(v4.allows(addr("203.0.113.1")));
  EXPECT_TRUE(v4.allows(addr("::ffff:203.0.113.1")));
  EXPECT_FALSE(v4.allows(addr("2001:db8::1")));
  auto v6 = nets("::/0");
  EXPECT_TRUE(v6.allows(addr("2001:db8::1")));
  // ::/0 covers the IPv4-mapped range, so also IPv4 clients.
  EXPECT_TRUE(v6.allows(addr("203.0.113.1")));
}

TEST(ClientNetworks, V4MappedClientsMatchV4Entries) {
  auto n = nets("10.0.0.0/8, 127.0.0.1");
  EXPECT_TRUE(n.allows(addr("::ffff:10.1.2.3")));
  EXPECT_TRUE(n.allows(addr("::ffff:127.0.0.1")));
  EXPECT_FALSE(n.allows(addr("::ffff:11.1.2.3")));
  // Only the mapped form is IPv4; the same bits elsewhere are not.
  EXPECT_FALSE(n.allows(addr("::10.1.2.3")));
  EXPECT_FALSE(n.allows(addr("64:ff9b::10.1.2.3")));
}

TEST(ClientNetworks, V4ClientsMatchMappedV6Entries) {
  auto n = nets("::ffff:10.0.0.0/104");
  EXPECT_TRUE(n.allows(addr("10.1.2.3")));
  EXPECT_TRUE(n.allows(addr("::ffff:10.1.2.3")));
  EXPECT_FALSE(n.allows(addr("11.1.2.3")));
}

TEST(ClientNetworks, ClientScopeIdsAreIgnored) {
  auto n = nets("fe80::/10");
  EXPECT_TRUE(n.allows(addr("fe80::1%1")));
  EXPECT_FALSE(nets("::1").allows(addr("fe80::1%1")));
}

// ---- RateLimiter ----

const auto t0 = std::chrono::steady_clock::time_point() + 1000h;

TEST(RateLimiter, AllowsTheBurstThenRefusesWithTheWaitForOneToken) {
  RateLimiter limiter(2, 5);  // one token every 500 ms
  auto client = addr("203.0.113.7");
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(limiter.take(client, t0).allowed) << i;
  auto refused = limiter.take(client, t0);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after, 500ms);
  EXPECT_EQ(retry_after_seconds(refused), 1);

  auto later = limiter.take(client, t0 + 250ms);
  EXPECT_FALSE(later.allowed);
  EXPECT_EQ(later.retry_after, 250ms);
}

TEST(RateLimiter, WaitingRetryAfterIsEnough) {
  RateLimiter limiter(3, 1);  // a token every 333.3 ms, rounded up to 334
  auto client = addr("203.0.113.7");
  EXPECT_TRUE(limiter.take(client, t0).allowed);
  auto refused = limiter.take(client, t0);
  ASSERT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after, 334ms);
  EXPECT_FALSE(limiter.take(client, t0 + refused.retry_after - 1ms).allowed);
  EXPECT_TRUE(limiter.take(client, t0 + refused.retry_after).allowed);
}

TEST(RateLimiter, RefillsOverTimeUpToTheBurst) {
  RateLimiter limiter(10, 3);
  auto client = addr("2001:db8::1");
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.take(client, t0).allowed);
  EXPECT_FALSE(limiter.take(client, t0).allowed);
  EXPECT_TRUE(limiter.take(client, t0 + 100ms).allowed);
  EXPECT_FALSE(limiter.take(client, t0 + 100ms).allowed);

  // An hour idle refills only to the burst, not to 36000 tokens.
  auto hour = t0 + 1h;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(limiter.take(client, hour).allowed);
  EXPECT_FALSE(limiter.take(client, hour).allowed);
}

TEST(RateLimiter, RefusedRequestsDoNotPostponeTheNextToken) {
  RateLimiter limiter(1, 1);
  auto client = addr("203.0.113.7");
  EXPECT_TRUE(limiter.take(client, t0).allowed);
  for (int i = 1; i < 10; ++i) EXPECT_FALSE(limiter.take(client, t0 + i * 100ms).allowed);
  EXPECT_TRUE(limiter.take(client, t0 + 1s).allowed);
}

TEST(RateLimiter, ClockGoingBackwardsGivesNoTokens) {
  RateLimiter limiter(1, 1);
  auto client = addr("203.0.113.7");
  EXPECT_TRUE(limiter.take(client, t0 + 10s).allowed);
  EXPECT_FALSE(limiter.take(client, t0).allowed);
  EXPECT_FALSE(limiter.take(client, t0 + 10s).allowed);
  EXPECT_TRUE(limiter.take(client, t0 + 11s).allowed);
}

TEST(RateLimiter, ClientsAreIndependent) {
  RateLimiter limiter(1, 2);
  auto a = addr("203.0.113.1");
  auto b = addr("203.0.113.2");
  EXPECT_TRUE(limiter.take(a, t0).allowed);
  EXPECT_TRUE(limiter.take(a, t0).allowed);
  EXPECT_FALSE(limiter.take(a, t0).allowed);
  EXPECT_TRUE(limiter.take(b, t0).allowed);
  EXPECT_TRUE(limiter.take(b, t0).allowed);
  EXPECT_FALSE(limiter.take(b, t0).allowed);
  EXPECT_EQ(limiter.clients(), 2u);
}

TEST(RateLimiter, AnIpv6Slash64IsOneClient) {
  RateLimiter limiter(1, 2);
  EXPECT_TRUE(limiter.take(addr("2001:db8:0:1::1"), t0).allowed);
  EXPECT_TRUE(limiter.take(addr("2001:db8:0:1:ffff:ffff:ffff:ffff"), t0).allowed);
  EXPECT_FALSE(limiter.take(addr("2001:db8:0:1:abcd::42%3"), t0).allowed);
  EXPECT_TRUE(limiter.take(addr("2001:db8:0:2::1"), t0).allowed);
  EXPECT_EQ(limiter.clients(), 2u);
}

TEST(RateLimiter, AnIpv4ClientIsOneClientInEitherForm) {
  RateLimiter limiter(1, 2);
  EXPECT_TRUE(limiter.take(addr("10.1.2.3"), t0).allowed);
  EXPECT_TRUE(limiter.take(addr("::ffff:10.1.2.3"), t0).allowed);
  EXPECT_FALSE(limiter.take(addr("10.1.2.3"), t0).allowed);
  // Neighbouring IPv4 addresses are separate clients, unlike IPv6 ones.
  EXPECT_TRUE(limiter.take(addr("10.1.2.4"), t0).allowed);
  EXPECT_EQ(limiter.clients(), 2u);
}

TEST(RateLimiter, AFloodOfDistinctClientsStaysBounded) {
  RateLimiter limiter(1, 5, 1000);
  auto hammer = addr("198.51.100.1");
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(limiter.take(hammer, t0).allowed);

  for (std::uint32_t i = 0; i < 100'000; ++i) {
    auto now = t0 + std::chrono::microseconds(i);
    EXPECT_TRUE(limiter.take(ip::address_v4(0x0a000000u + i), now).allowed);
    if (i % 100 == 0) {
      // Refused clients stay recently used, so the flood does not evict them.
      EXPECT_FALSE(limiter.take(hammer, now).allowed) << i;
    }
    ASSERT_LE(limiter.clients(), 1000u);
  }
  for (std::uint64_t i = 0; i < 100'000; ++i) {
    ip::address_v6::bytes_type bytes{0x20, 0x01, 0x0d, 0xb8};
    for (int b = 0; b < 4; ++b) bytes[4 + b] = static_cast<unsigned char>(i >> (8 * b));
    limiter.take(ip::address_v6(bytes), t0 + 1s);
    ASSERT_LE(limiter.clients(), 1000u);
  }
}

TEST(RateLimiter, IdleBucketsAreDroppedBeforeActiveOnes) {
  RateLimiter limiter(1, 2, 8);
  auto busy = addr("198.51.100.1");
  EXPECT_TRUE(limiter.take(busy, t0).allowed);
  EXPECT_TRUE(limiter.take(busy, t0).allowed);
  for (std::uint32_t i = 0; i < 7; ++i) limiter.take(ip::address_v4(0x0a000000u + i), t0 + 1ms);
  EXPECT_EQ(limiter.clients(), 8u);
  // At 1.1 s the seven are full again; busy, the least recently used, is not.
  EXPECT_TRUE(limiter.take(addr("10.9.9.9"), t0 + 1100ms).allowed);
  EXPECT_EQ(limiter.clients(), 2u);
  EXPECT_TRUE(limiter.take(busy, t0 + 1100ms).allowed);
  EXPECT_FALSE(limiter.take(busy, t0 + 1100ms).allowed);  // its bucket was kept, not reset
}

TEST(RateLimiter, WhenNothingIsIdleTheLeastRecentlyUsedGo) {
  RateLimiter limiter(1, 1, 8);
  for (std::uint32_t i = 0; i < 8; ++i) limiter.take(ip::address_v4(0x0a000000u + i), t0);
  limiter.take(ip::address_v4(0x0a000000u), t0);  // 10.0.0.0 is now the most recent
  limiter.take(addr("10.9.9.9"), t0);
  EXPECT_EQ(limiter.clients(), 8u);
  EXPECT_FALSE(limiter.take(ip::address_v4(0x0a000000u), t0).allowed);  // kept, still empty
  EXPECT_TRUE(limiter.take(ip::address_v4(0x0a000001u), t0).allowed);   // was evicted: full again
}

TEST(RateLimiter, RateZeroIsUnlimitedAndKeepsNothing) {
  RateLimiter limiter(0, 0);
  for (std::uint32_t i = 0; i < 10'000; ++i) {
    auto d = limiter.take(addr("203.0.113.1"), t0);
    EXPECT_TRUE(d.allowed);
    EXPECT_EQ(d.retry_after, 0ms);
  }
  EXPECT_EQ(limiter.clients(), 0u);
}

TEST(RateLimiter, TinyRatesCapTheRetryAfter) {
  RateLimiter limiter(1e-12, 1);
  auto client = addr("203.0.113.1");
  EXPECT_TRUE(limiter.take(client, t0).allowed);
  auto refused = limiter.take(client, t0);
  EXPECT_FALSE(refused.allowed);
  EXPECT_EQ(refused.retry_after, RateLimiter::kMaxRetryAfter);
  EXPECT_EQ(retry_after_seconds(refused), 86400);
}

TEST(RateLimiter, RetryAfterSecondsRoundsUpAndIsAtLeastOne) {
  EXPECT_EQ(retry_after_seconds({false, 0ms}), 1);
  EXPECT_EQ(retry_after_seconds({false, 1ms}), 1);
  EXPECT_EQ(retry_after_seconds({false, 1000ms}), 1);
  EXPECT_EQ(retry_after_seconds({false, 1001ms}), 2);
  EXPECT_EQ(retry_after_seconds({false, 59'999ms}), 60);
}

TEST(RateLimiter, RefusesNonsenseSettings) {
  EXPECT_THROW(RateLimiter(-1, 5), std::invalid_argument);
  EXPECT_THROW(RateLimiter(std::nan(""), 5), std::invalid_argument);
  EXPECT_THROW(RateLimiter(HUGE_VAL, 5), std::invalid_argument);
  EXPECT_THROW(RateLimiter(1, 0.5), std::invalid_argument);
  EXPECT_THROW(RateLimiter(1, std::nan("")), std::invalid_argument);
  EXPECT_THROW(RateLimiter(1, 5, 0), std::invalid_argument);
  EXPECT_NO_THROW(RateLimiter(0.5, 1, 1));
}

TEST(RateLimiter, ConcurrentTakersShareOneBucketExactly) {
  RateLimiter limiter(1e-9, 1000);
  std::atomic<int> allowed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        if (limiter.take(addr("203.0.113.1"), t0).allowed) ++allowed;
        limiter.take(ip::address_v4(0x0b000000u + static_cast<std::uint32_t>(i)), t0);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(allowed.load(), 1000);
}

}  // namespace
