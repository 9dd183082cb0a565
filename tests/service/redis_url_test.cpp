// The presence cache's Redis URL, read into its parts.
#include <catch2/catch.hpp>

#include "adapters/redis/redis_url.hpp"

using sig::redis::parse_url;

TEST_CASE("redis url: host, port, database and TLS", "[redis_url]") {
  auto plain = parse_url("redis://cache.internal:6380/2");
  REQUIRE(plain);
  CHECK(plain->host == "cache.internal");
  CHECK(plain->port == 6380);
  CHECK(plain->db == 2);
  CHECK_FALSE(plain->tls);
  CHECK(plain->password.empty());

  auto tls = parse_url("rediss://cache.internal");
  REQUIRE(tls);
  CHECK(tls->tls);
  CHECK(tls->port == 6379);
  CHECK(tls->db == 0);

  auto bare = parse_url("127.0.0.1:7000");  // no scheme: redis://
  REQUIRE(bare);
  CHECK(bare->host == "127.0.0.1");
  CHECK(bare->port == 7000);
}

TEST_CASE("redis url: credentials, with escapes", "[redis_url]") {
  auto both = parse_url("redis://app:p%40ss%3Aword@127.0.0.1:6379");
  REQUIRE(both);
  CHECK(both->user == "app");
  CHECK(both->password == "p@ss:word");
  CHECK(both->host == "127.0.0.1");

  auto password_only = parse_url("redis://secret@127.0.0.1");  // as redis-cli -u takes it
  REQUIRE(password_only);
  CHECK(password_only->user.empty());
  CHECK(password_only->password == "secret");
}

TEST_CASE("redis url: what cannot be read is refused", "[redis_url]") {
  CHECK_FALSE(parse_url("http://127.0.0.1:6379"));
  CHECK_FALSE(parse_url("redis://127.0.0.1:port"));
  CHECK_FALSE(parse_url("redis://127.0.0.1:6379/x"));
  CHECK_FALSE(parse_url("redis://127.0.0.1:6379/-1"));
}
