#include <catch2/catch.hpp>

#include "adapters/nats/pub_ack.hpp"

using sig::nats::parse_pub_ack;

TEST_CASE("pub_ack: a stored append, as nats-server 2.9 writes it (a space after the first comma)", "[pub_ack]") {
  auto ack = parse_pub_ack(R"({"stream":"SIGSTREAM", "seq":400001})");
  CHECK(ack.ok);
  CHECK(ack.seq == 400001);
  CHECK_FALSE(ack.duplicate);
  CHECK(ack.error.empty());
}

TEST_CASE("pub_ack: a duplicate keeps the first copy's seq", "[pub_ack]") {
  auto ack = parse_pub_ack(R"({"stream":"SIGSTREAM", "seq":42,"duplicate": true})");
  CHECK(ack.ok);
  CHECK(ack.seq == 42);
  CHECK(ack.duplicate);
  CHECK_FALSE(parse_pub_ack(R"({"stream":"S","seq":42,"duplicate":false})").duplicate);
}

TEST_CASE("pub_ack: an error is not ok, with JetStream's code and description", "[pub_ack]") {
  auto ack = parse_pub_ack(
      R"({"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 400001"},"stream":"S","seq":0})");
  CHECK_FALSE(ack.ok);
  CHECK(ack.error_code == 10071);
  CHECK(ack.error == "wrong last sequence: 400001");
}

TEST_CASE("pub_ack: a stream named like a key does not fool the reader", "[pub_ack]") {
  auto ack = parse_pub_ack(R"({"stream":"seq", "seq":7})");
  CHECK(ack.ok);
  CHECK(ack.seq == 7);
  CHECK(parse_pub_ack(R"({"stream":"error", "seq":8})").ok);
}

TEST_CASE("pub_ack: empty, truncated or foreign answers are failures, never a seq", "[pub_ack]") {
  for (auto text : {"", "{", R"({"stream":"S"})", R"({"stream":"S", "seq":})", R"({"stream":"S", "seq":0})",
                    R"({"stream":"S", "seq":"12"})", R"({"seq":99999999999999999999999})", "not json"}) {
    auto ack = parse_pub_ack(text);
    CHECK_FALSE(ack.ok);
    CHECK(ack.seq == 0);
    CHECK_FALSE(ack.error.empty());
  }
}

TEST_CASE("pub_ack: names the stream that stored it", "[pub_ack]") {
  CHECK(parse_pub_ack(R"({"stream":"KV_SIGSTREAM_HOLDINGS", "seq":3})").stream == "KV_SIGSTREAM_HOLDINGS");
}
