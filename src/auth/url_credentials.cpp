#include "auth/url_credentials.hpp"

namespace sig::auth {

namespace {

std::string one_url(std::string_view url) {
  auto scheme_end = url.find("://");
  std::size_t authority = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
  auto authority_end = url.find_first_of("/?#", authority);
  auto at = url.rfind('@', authority_end == std::string_view::npos ? url.size() : authority_end);
  if (at == std::string_view::npos || at < authority) return std::string(url);
  auto userinfo = url.substr(authority, at - authority);
  auto colon = userinfo.find(':');
  std::string out(url.substr(0, authority));
  if (colon != std::string_view::npos && colon > 0) out.append(userinfo.substr(0, colon)).append(":***");
  else out.append("***");
  out.append(url.substr(at));
  return out;
}

}  // namespace

std::string url_without_credentials(std::string_view url) {
  std::string out;
  while (true) {
    auto comma = url.find(',');
    out += one_url(url.substr(0, comma));
    if (comma == std::string_view::npos) return out;
    out += ',';
    url = url.substr(comma + 1);
  }
}

}  // namespace sig::auth
