// hiredis's error codes and Redis's error replies travel as
// std::error_code of the "hiredis" category, the reply's text beside it.
#include <catch2/catch.hpp>

#include <hiredis/hiredis.h>

#include <cstring>
#include <memory>

#include "adapters/redis/redis_errors.hpp"

using sig::redis::hiredis_error;
using sig::redis::redis_error;

TEST_CASE("redis errors: the category is named, and every code is worded", "[redis_errors]") {
  for (auto code : {redis_error::io, redis_error::other, redis_error::eof, redis_error::protocol, redis_error::oom,
                    redis_error::timeout, redis_error::error_reply}) {
    std::error_code ec = code;
    CHECK(std::string(ec.category().name()) == "hiredis");
    CHECK(ec.message().find("hiredis error") == std::string::npos);
  }
  CHECK(hiredis_error(REDIS_ERR_EOF) == redis_error::eof);
  CHECK_FALSE(hiredis_error(0));
}

TEST_CASE("redis errors: a context's error comes back as the same code", "[redis_errors]") {
  // A socket path that cannot exist: hiredis fails at once, no server needed.
  std::unique_ptr<redisContext, decltype(&redisFree)> context(redisConnectUnix("/nonexistent/sigstream.sock"),
                                                              &redisFree);
  REQUIRE(context != nullptr);
  REQUIRE(context->err != 0);
  auto ec = hiredis_error(context->err);
  CHECK(ec.value() == context->err);
  CHECK(ec == redis_error::io);
  CHECK(ec.category() == sig::redis::hiredis_category());
}

TEST_CASE("redis errors: a reply that cannot be parsed is a protocol error", "[redis_errors]") {
  std::unique_ptr<redisReader, decltype(&redisReaderFree)> reader(redisReaderCreate(), &redisReaderFree);
  char const garbage[] = "!not resp\r\n";
  REQUIRE(redisReaderFeed(reader.get(), garbage, std::strlen(garbage)) == REDIS_OK);
  void* reply = nullptr;
  REQUIRE(redisReaderGetReply(reader.get(), &reply) == REDIS_ERR);
  CHECK(hiredis_error(reader->err) == redis_error::protocol);
}

TEST_CASE("redis errors: an error reply says so by its code, and keeps its text", "[redis_errors]") {
  std::unique_ptr<redisReader, decltype(&redisReaderFree)> reader(redisReaderCreate(), &redisReaderFree);
  char const answer[] = "-NOSCRIPT No matching script. Please use EVAL.\r\n";
  REQUIRE(redisReaderFeed(reader.get(), answer, std::strlen(answer)) == REDIS_OK);
  void* raw = nullptr;
  REQUIRE(redisReaderGetReply(reader.get(), &raw) == REDIS_OK);
  std::unique_ptr<redisReply, decltype(&freeReplyObject)> reply(static_cast<redisReply*>(raw), &freeReplyObject);
  REQUIRE(reply->type == REDIS_REPLY_ERROR);
  auto refusal = sig::redis::error_reply(*reply);
  CHECK(refusal);
  CHECK(refusal.code == redis_error::error_reply);
  CHECK(refusal.detail == "NOSCRIPT No matching script. Please use EVAL.");
  CHECK(refusal.text() == refusal.detail);
  CHECK(sig::redis::redis_failure{redis_error::eof, {}}.text() == std::error_code(redis_error::eof).message());
}

TEST_CASE("redis errors: generic conditions only where they say the same", "[redis_errors]") {
  CHECK(std::error_code(redis_error::timeout) == std::errc::timed_out);
  CHECK(std::error_code(redis_error::oom) == std::errc::not_enough_memory);
  CHECK(std::error_code(redis_error::eof) != std::errc::timed_out);
  CHECK(std::error_code(redis_error::error_reply) != std::errc::timed_out);
  CHECK(std::error_code(redis_error::io) != std::errc::io_error);
}

TEST_CASE("redis errors: a dropped connection is EOF, a reset or a broken pipe", "[redis_errors]") {
  CHECK(sig::redis::connection_dropped(redis_error::eof));
  CHECK(sig::redis::connection_dropped(std::make_error_code(std::errc::connection_reset)));
  CHECK(sig::redis::connection_dropped(std::error_code(EPIPE, std::system_category())));
  CHECK_FALSE(sig::redis::connection_dropped(redis_error::timeout));
  CHECK_FALSE(sig::redis::connection_dropped(redis_error::error_reply));
  CHECK_FALSE(sig::redis::connection_dropped(std::error_code(ECONNREFUSED, std::system_category())));
}
