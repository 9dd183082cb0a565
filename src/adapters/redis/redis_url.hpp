#pragma once
// Where the presence cache's Redis is: a redis:// or rediss:// URL, read into
// its parts.
#include <optional>
#include <string>

namespace sig::redis {

struct endpoint {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string user;
  std::string password;
  int db = 0;
  bool tls = false;  // rediss://
};

// redis[s]://[[USER]:PASSWORD@]HOST[:PORT][/DB], with %XX escapes in the user
// and password; nullopt for another scheme or an unreadable port or db.
std::optional<endpoint> parse_url(std::string const& url);

}  // namespace sig::redis
