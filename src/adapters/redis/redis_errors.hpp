#pragma once
// hiredis's error codes (redisContext::err, redisReader::err) as
// std::error_code of the category "hiredis", and Redis's own refusal, an
// error reply ("-ERR ...", "-NOSCRIPT ..."), as one more code of it: the
// code says what kind of failure it was, the reply's text goes beside it.
//
// This service's connection has its own socket (connection.hpp), so its
// socket errors are errno codes of std::system_category, as they come;
// hiredis's codes name what hiredis knows of (a reply it cannot parse) and
// what the connection sees of Redis (closed, no answer in time).
#include <string>
#include <system_error>

struct redisReply;

namespace sig::redis {

// hiredis's numbers (hiredis/read.h; timeout as hiredis 1.0 numbers it,
// which 0.14 lacks), then ours.
enum class redis_error {
  io = 1,             // REDIS_ERR_IO: reading or writing the connection (here: TLS)
  other = 2,          // REDIS_ERR_OTHER: anything else (a name that does not resolve)
  eof = 3,            // REDIS_ERR_EOF: Redis closed the connection
  protocol = 4,       // REDIS_ERR_PROTOCOL: a reply that cannot be parsed
  oom = 5,            // REDIS_ERR_OOM
  timeout = 6,        // REDIS_ERR_TIMEOUT: no answer within the timeout
  error_reply = 100,  // Redis answered with an error reply (REDIS_REPLY_ERROR)
};

std::error_category const& hiredis_category();
inline std::error_code make_error_code(redis_error e) { return {static_cast<int>(e), hiredis_category()}; }
// redisContext::err or redisReader::err as a code; 0: no error.
std::error_code hiredis_error(int err);

// Redis went away from a connection that was working: closed it (its idle
// `timeout`, a restart) or reset it.
bool connection_dropped(std::error_code ec);

// A failed Redis call: its code, and the words the code cannot hold (an
// error reply's text, OpenSSL's reason, the resolver's), for the log.
struct redis_failure {
  std::error_code code;
  std::string detail;
  explicit operator bool() const { return static_cast<bool>(code); }
  // The detail when there is one (it says more), else the code's words.
  std::string text() const { return detail.empty() ? code.message() : detail; }
};

// An error reply (REDIS_REPLY_ERROR) as a failure: error_reply, its text.
redis_failure error_reply(redisReply const& reply);

}  // namespace sig::redis

template <>
struct std::is_error_code_enum<sig::redis::redis_error> : std::true_type {};
