// The admission core: token buckets, the per-address limiter and the client
// address behind trusted proxies.
#include <catch2/catch.hpp>

#include <string>

#include "admission/address_limiter.hpp"
#include "admission/client_address.hpp"
#include "admission/token_bucket.hpp"

using namespace sig::admission;
using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

TEST_CASE("a token bucket starts full, refills at its rate and never holds more than its burst") {
  token_bucket bucket;
  auto t = clock_type::time_point{} + 1h;
  for (int i = 0; i < 3; ++i) REQUIRE(bucket.take(t, 2.0, 3.0));
  REQUIRE_FALSE(bucket.take(t, 2.0, 3.0));
  REQUIRE_FALSE(bucket.take(t + 400ms, 2.0, 3.0));  // 0.8 of a token
  REQUIRE(bucket.take(t + 500ms, 2.0, 3.0));         // the first whole one
  REQUIRE_FALSE(bucket.take(t + 500ms, 2.0, 3.0));
  // A long pause saves up the burst, no more.
  auto later = t + 1h;
  REQUIRE(bucket.full_at(later, 2.0, 3.0));
  for (int i = 0; i < 3; ++i) REQUIRE(bucket.take(later, 2.0, 3.0));
  REQUIRE_FALSE(bucket.take(later, 2.0, 3.0));
  REQUIRE_FALSE(bucket.full_at(later, 2.0, 3.0));
}

TEST_CASE("a token bucket is not fooled by a clock that goes back") {
  token_bucket bucket;
  auto t = clock_type::time_point{} + 1h;
  REQUIRE(bucket.take(t, 1.0, 1.0));
  REQUIRE_FALSE(bucket.take(t - 10s, 1.0, 1.0));
  REQUIRE_FALSE(bucket.take(t - 5s, 1.0, 1.0));
}

TEST_CASE("the address limiter counts each address on its own") {
  address_limiter limiter(1.0, 2.0);
  auto t = clock_type::time_point{} + 1h;
  REQUIRE(limiter.allow("10.0.0.1", t));
  REQUIRE(limiter.allow("10.0.0.1", t));
  REQUIRE_FALSE(limiter.allow("10.0.0.1", t));
  REQUIRE(limiter.allow("10.0.0.2", t));
  REQUIRE(limiter.allow("10.0.0.1", t + 1s));
}

TEST_CASE("the address limiter forgets refilled addresses and stays within max_keys") {
  address_limiter limiter(10.0, 5.0, 100);
  auto t = clock_type::time_point{} + 1h;
  for (int i = 0; i < 100; ++i) REQUIRE(limiter.allow("a" + std::to_string(i), t));
  REQUIRE(limiter.tracked() == 100);
  // Full table: a new address is refused rather than growing it...
  REQUIRE_FALSE(limiter.allow("newcomer", t + 10ms));
  REQUIRE(limiter.tracked() == 100);
  // ...until the others have refilled (0.5 s at 10/s), when they are forgotten.
  REQUIRE(limiter.allow("newcomer", t + 2s));
  REQUIRE(limiter.tracked() == 1);
  // A forgotten address starts again with a full burst, as it would have had.
  for (int i = 0; i < 5; ++i) REQUIRE(limiter.allow("a0", t + 2s));
  REQUIRE_FALSE(limiter.allow("a0", t + 2s));
}

TEST_CASE("trusted networks parse from addresses and ADDRESS/PREFIX, IPv4 and IPv6") {
  auto nets = parse_networks(" 127.0.0.0/8, ::1 ,10.1.2.3,fd00::/8,");
  REQUIRE(nets);
  REQUIRE(nets->size() == 4);
  CHECK(is_trusted(*nets, "127.200.0.1"));
  CHECK(is_trusted(*nets, "::1"));
  CHECK(is_trusted(*nets, "10.1.2.3"));
  CHECK_FALSE(is_trusted(*nets, "10.1.2.4"));
  CHECK(is_trusted(*nets, "fd12:3456::1"));
  CHECK_FALSE(is_trusted(*nets, "fe80::1"));
  CHECK(is_trusted(*nets, "::ffff:127.0.0.1"));  // IPv4-mapped is the same address
  CHECK_FALSE(is_trusted(*nets, "128.0.0.1"));
  CHECK_FALSE(is_trusted(*nets, "not an address"));
  CHECK(parse_networks("")->empty());
  auto all = parse_networks("0.0.0.0/0");
  CHECK(is_trusted(*all, "203.0.113.9"));
  CHECK_FALSE(is_trusted(*all, "2001:db8::1"));  // an IPv4 network holds no IPv6 address
}

TEST_CASE("malformed trusted networks are refused with a reason") {
  for (auto bad : {"127.0.0.1/33", "::1/129", "10.0.0.0/", "10.0.0.0/8x", "10.0.0.0/-1", "localhost", "1.2.3",
                   "10.0.0.0/8/8", "[::1"}) {
    std::string error;
    INFO(bad);
    CHECK_FALSE(parse_networks(bad, &error));
    CHECK_FALSE(error.empty());
  }
}

TEST_CASE("the client address: the TCP peer, unless it is a trusted proxy") {
  auto trusted = *parse_networks("127.0.0.1,10.0.0.0/8");
  // An untrusted peer is the client, whatever it claims.
  CHECK(client_address("203.0.113.9", "198.51.100.1", trusted) == "203.0.113.9");
  // A trusted proxy: the rightmost entry it appended.
  CHECK(client_address("127.0.0.1", "203.0.113.9", trusted) == "203.0.113.9");
  // A client's own entries on the left are not believed.
  CHECK(client_address("127.0.0.1", "198.51.100.1, 203.0.113.9", trusted) == "203.0.113.9");
  // Chains of trusted proxies are skipped, from the right.
  CHECK(client_address("127.0.0.1", "198.51.100.1, 203.0.113.9, 10.0.0.5", trusted) == "203.0.113.9");
  // All trusted: the leftmost is the best we know.
  CHECK(client_address("127.0.0.1", "10.0.0.7,10.0.0.5", trusted) == "10.0.0.7");
  // No header: the proxy itself.
  CHECK(client_address("127.0.0.1", "", trusted) == "127.0.0.1");
  // A malformed entry stops the walk at the hop that wrote it.
  CHECK(client_address("127.0.0.1", "203.0.113.9, garbage", trusted) == "127.0.0.1");
  CHECK(client_address("127.0.0.1", "203.0.113.9, 10.0.0.5:8080", trusted) == "127.0.0.1");
  // Empty entries are skipped; spaces and tabs trimmed; IPv6 and brackets.
  CHECK(client_address("127.0.0.1", "2001:db8::1 ,, ", trusted) == "2001:db8::1");
  CHECK(client_address("127.0.0.1", "\t[2001:db8::2]", trusted) == "2001:db8::2");
  // IPv4-mapped IPv6 is reported as IPv4, so one client is one key.
  CHECK(client_address("::ffff:127.0.0.1", "::ffff:203.0.113.9", trusted) == "203.0.113.9");
  // No trusted proxies at all: always the peer.
  CHECK(client_address("127.0.0.1", "203.0.113.9", {}) == "127.0.0.1");
}

TEST_CASE("canonical addresses") {
  CHECK(canonical_address("::ffff:10.0.0.1") == "10.0.0.1");
  CHECK(canonical_address(" 2001:DB8:0:0::1 ") == "2001:db8::1");
  CHECK_FALSE(canonical_address("10.0.0.256"));
  CHECK_FALSE(canonical_address(std::string(100, '1')));
}

TEST_CASE("comma_list: items trimmed, empty ones dropped", "[admission]") {
  using sig::admission::comma_list;
  using list = std::vector<std::string_view>;
  CHECK(comma_list("https://a.example, https://b.example ,,\thttps://c.example\t") ==
        list{"https://a.example", "https://b.example", "https://c.example"});
  CHECK(comma_list("").empty());
  CHECK(comma_list(" , ,\t").empty());
  CHECK(comma_list("one") == list{"one"});
}
