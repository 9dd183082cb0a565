#include "adapters/redis/redis_url.hpp"

#include <cctype>
#include <string_view>

namespace sig::redis {

namespace {

// %XX escapes in a URL's user and password.
std::string percent_decoded(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

std::optional<endpoint> parse_url(std::string const& url) {
  std::string rest = url;
  endpoint ep;
  if (rest.starts_with("redis://")) {
    rest = rest.substr(8);
  } else if (rest.starts_with("rediss://")) {
    rest = rest.substr(9);
    ep.tls = true;
  } else if (rest.find("://") != std::string::npos) {
    return std::nullopt;
  }
  if (auto slash = rest.find('/'); slash != std::string::npos) {
    auto db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (!db.empty()) {
      try {
        std::size_t used = 0;
        ep.db = std::stoi(db, &used);
        if (used != db.size() || ep.db < 0) return std::nullopt;
      } catch (...) {
        return std::nullopt;
      }
    }
  }
  if (auto at = rest.rfind('@'); at != std::string::npos) {
    auto userinfo = rest.substr(0, at);
    rest = rest.substr(at + 1);
    auto colon = userinfo.find(':');
    if (colon == std::string::npos) {
      ep.password = percent_decoded(userinfo);  // redis://PASSWORD@host, as redis-cli -u takes it
    } else {
      ep.user = percent_decoded(userinfo.substr(0, colon));
      ep.password = percent_decoded(userinfo.substr(colon + 1));
    }
  }
  if (auto colon = rest.rfind(':'); colon != std::string::npos) {
    ep.host = rest.substr(0, colon);
    try {
      ep.port = std::stoi(rest.substr(colon + 1));
    } catch (...) {
      return std::nullopt;
    }
  } else if (!rest.empty()) {
    ep.host = rest;
  }
  return ep;
}

}  // namespace sig::redis
