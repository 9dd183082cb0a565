#include "auth/resume_token.hpp"

#include <charconv>
#include <optional>
#include <vector>

#include "auth/hmac.hpp"
#include "domain/room_name.hpp"

namespace sig::auth {

namespace {

constexpr std::string_view prefix = "r1.";
constexpr std::size_t max_token_bytes = 2048;

std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  while (true) {
    auto at = text.find(separator, start);
    parts.push_back(text.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
    if (at == std::string_view::npos) return parts;
    start = at + 1;
  }
}

template <typename Number>
std::optional<Number> number(std::string_view text) {
  Number value{};
  if (text.empty() || text.size() > 20 || (text.size() > 1 && text[0] == '0')) return std::nullopt;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace

std::string_view to_string(token_problem problem) {
  switch (problem) {
    case token_problem::malformed: return "malformed";
    case token_problem::bad_signature: return "bad signature";
    case token_problem::expired: return "expired";
  }
  return "malformed";
}

std::string issue_resume_token(resume_claims const& claims, std::string_view secret) {
  std::string body = claims.room_token + "\n" + claims.peer + "\n" + std::to_string(claims.join_seq) + "\n" +
                     std::to_string(claims.expires_unix_s);
  std::string signed_part = std::string(prefix) + domain::base64url(body);
  return signed_part + "." + domain::base64url(hmac_sha256(secret, signed_part));
}

std::variant<resume_claims, token_problem> verify_resume_token(std::string_view token, std::string_view secret,
                                                               std::int64_t now_unix_s) {
  if (token.size() > max_token_bytes || !token.starts_with(prefix)) return token_problem::malformed;
  auto dot = token.find('.', prefix.size());
  if (dot == std::string_view::npos) return token_problem::malformed;
  std::string_view signed_part = token.substr(0, dot);
  auto mac = domain::base64url_decode(token.substr(dot + 1));
  auto body = domain::base64url_decode(signed_part.substr(prefix.size()));
  if (!mac || !body) return token_problem::malformed;
  // The signature first: nothing an outsider wrote is looked at further.
  if (!constant_time_equal(*mac, hmac_sha256(secret, signed_part))) return token_problem::bad_signature;
  auto lines = split(*body, '\n');
  if (lines.size() != 4 || lines[0].empty() || lines[1].empty()) return token_problem::malformed;
  auto join_seq = number<std::uint64_t>(lines[2]);
  auto expires = number<std::int64_t>(lines[3]);
  if (!join_seq || !expires) return token_problem::malformed;
  if (*expires <= now_unix_s) return token_problem::expired;
  return resume_claims{std::string(lines[0]), std::string(lines[1]), *join_seq, *expires};
}

}  // namespace sig::auth
