#include "adapters/redis/redis_errors.hpp"

#include <hiredis/hiredis.h>

namespace sig::redis {

static_assert(static_cast<int>(redis_error::io) == REDIS_ERR_IO);
static_assert(static_cast<int>(redis_error::other) == REDIS_ERR_OTHER);
static_assert(static_cast<int>(redis_error::eof) == REDIS_ERR_EOF);
static_assert(static_cast<int>(redis_error::protocol) == REDIS_ERR_PROTOCOL);
static_assert(static_cast<int>(redis_error::oom) == REDIS_ERR_OOM);
#ifdef REDIS_ERR_TIMEOUT
static_assert(static_cast<int>(redis_error::timeout) == REDIS_ERR_TIMEOUT);
#endif

namespace {

class hiredis_category_impl final : public std::error_category {
 public:
  char const* name() const noexcept override { return "hiredis"; }
  std::string message(int code) const override {
    switch (static_cast<redis_error>(code)) {
      case redis_error::io: return "cannot read or write the connection to Redis";
      case redis_error::other: return "Redis cannot be used";
      case redis_error::eof: return "connection closed by Redis";
      case redis_error::protocol: return "a reply from Redis that cannot be read";
      case redis_error::oom: return "out of memory";
      case redis_error::timeout: return "no answer from Redis in time";
      case redis_error::error_reply: return "Redis answered with an error";
    }
    return "hiredis error " + std::to_string(code);
  }
  std::error_condition default_error_condition(int code) const noexcept override {
    switch (static_cast<redis_error>(code)) {
      case redis_error::timeout: return std::errc::timed_out;
      case redis_error::oom: return std::errc::not_enough_memory;
      default: return {code, *this};
    }
  }
};

}  // namespace

std::error_category const& hiredis_category() {
  static hiredis_category_impl const category;
  return category;
}

std::error_code hiredis_error(int err) {
  if (err == 0) return {};
  return {err, hiredis_category()};
}

bool connection_dropped(std::error_code ec) {
  return ec == redis_error::eof || ec == std::errc::connection_reset || ec == std::errc::broken_pipe;
}

redis_failure error_reply(redisReply const& reply) {
  return {redis_error::error_reply, reply.str != nullptr ? std::string(reply.str, reply.len) : std::string()};
}

}  // namespace sig::redis
