#include "auth/join_token.hpp"

#include <cmath>
#include <set>

#include "auth/hmac.hpp"
#include "domain/room_name.hpp"
#include "protocol/json.hpp"
#include "protocol/messages.hpp"

namespace sig::auth {

namespace json = protocol::json;

namespace {

constexpr std::size_t max_token_bytes = 8192;
constexpr std::size_t max_depth = 16;

std::optional<std::int64_t> integer(json::value const& v) {
  if (v.kind != json::kind::number) return std::nullopt;
  // JWT times are NumericDate: seconds, possibly with a fraction.
  std::string text(v.raw);
  char* end = nullptr;
  double d = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(d) || d < -1e15 || d > 1e15) return std::nullopt;
  return static_cast<std::int64_t>(std::floor(d));
}

std::optional<bool> boolean(json::value const& v) {
  if (v.kind != json::kind::boolean) return std::nullopt;
  return v.raw == "true";
}

}  // namespace

std::optional<std::vector<signing_key>> parse_keys(std::string_view text, std::string* error) {
  std::vector<signing_key> keys;
  std::set<std::string> ids;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto comma = text.find(',', start);
    std::string_view item = text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
    auto colon = item.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon + 1 == item.size()) {
      if (error) *error = "each key is KID:SECRET, with neither empty";
      return std::nullopt;
    }
    std::string id(item.substr(0, colon));
    if (!ids.insert(id).second) {
      if (error) *error = "key id '" + id + "' appears twice";
      return std::nullopt;
    }
    keys.push_back(signing_key{id, std::string(item.substr(colon + 1))});
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return keys;
}

std::string_view to_string(join_token_problem problem) {
  switch (problem) {
    case join_token_problem::malformed: return "malformed";
    case join_token_problem::bad_algorithm: return "algorithm is not HS256";
    case join_token_problem::unknown_key: return "unknown key id";
    case join_token_problem::bad_signature: return "bad signature";
    case join_token_problem::expired: return "expired";
    case join_token_problem::not_yet_valid: return "not yet valid";
    case join_token_problem::missing_claim: return "missing room or exp claim";
  }
  return "malformed";
}

std::variant<join_claims, join_token_problem> verify_join_token(std::string_view token,
                                                                std::vector<signing_key> const& keys,
                                                                std::int64_t now_unix_s) {
  if (token.size() > max_token_bytes) return join_token_problem::malformed;
  auto first = token.find('.');
  auto second = first == std::string_view::npos ? first : token.find('.', first + 1);
  if (second == std::string_view::npos || token.find('.', second + 1) != std::string_view::npos)
    return join_token_problem::malformed;
  auto header_text = domain::base64url_decode(token.substr(0, first));
  auto payload_text = domain::base64url_decode(token.substr(first + 1, second - first - 1));
  auto signature = domain::base64url_decode(token.substr(second + 1));
  if (!header_text || !payload_text || !signature) return join_token_problem::malformed;

  auto header = json::parse(*header_text, max_depth);
  if (!header.ok() || header.root.kind != json::kind::object) return join_token_problem::malformed;
  auto const* alg = header.object.find("alg");
  if (alg == nullptr || alg->kind != json::kind::string || alg->text != "HS256") return join_token_problem::bad_algorithm;

  // The signature before anything the token's author wrote is believed.
  std::string_view signed_part = token.substr(0, second);
  std::vector<signing_key const*> candidates;
  if (auto const* kid = header.object.find("kid")) {
    if (kid->kind != json::kind::string) return join_token_problem::malformed;
    for (auto const& k : keys)
      if (k.id == kid->text) candidates.push_back(&k);
    if (candidates.empty()) return join_token_problem::unknown_key;
  } else {
    for (auto const& k : keys) candidates.push_back(&k);
  }
  bool signed_ok = false;
  for (auto const* k : candidates) signed_ok |= constant_time_equal(*signature, hmac_sha256(k->secret, signed_part));
  if (!signed_ok) return join_token_problem::bad_signature;

  auto payload = json::parse(*payload_text, max_depth);
  if (!payload.ok() || payload.root.kind != json::kind::object) return join_token_problem::malformed;
  join_claims claims;
  auto const* room = payload.object.find("room");
  auto const* exp = payload.object.find("exp");
  if (room == nullptr || exp == nullptr) return join_token_problem::missing_claim;
  if (room->kind != json::kind::string || room->text.empty()) return join_token_problem::malformed;
  claims.room = room->text;
  auto expires = integer(*exp);
  if (!expires) return join_token_problem::malformed;
  claims.expires_unix_s = *expires;
  if (auto const* nbf = payload.object.find("nbf")) {
    auto not_before = integer(*nbf);
    if (!not_before) return join_token_problem::malformed;
    if (now_unix_s < *not_before) return join_token_problem::not_yet_valid;
  }
  if (*expires <= now_unix_s) return join_token_problem::expired;
  if (auto const* meta = payload.object.find("meta")) {
    if (meta->kind != json::kind::object) return join_token_problem::malformed;
    claims.meta_json = std::string(meta->raw);
  }
  if (auto const* rights = payload.object.find("rights")) {
    if (rights->kind != json::kind::object) return join_token_problem::malformed;
    auto parsed = json::parse(rights->raw, max_depth);
    for (auto const& [name, flag] : {std::pair<char const*, bool*>{"signal", &claims.may_signal},
                                     std::pair<char const*, bool*>{"broadcast", &claims.may_broadcast}}) {
      if (auto const* v = parsed.object.find(name)) {
        auto b = boolean(*v);
        if (!b) return join_token_problem::malformed;
        *flag = *b;
      }
    }
  }
  return claims;
}

bool room_admitted(std::string_view claim, std::string_view room) {
  if (!claim.empty() && claim.back() == '*') return room.starts_with(claim.substr(0, claim.size() - 1));
  return claim == room;
}

std::string mint_join_token(signing_key const& key, std::string_view room, std::int64_t expires_unix_s,
                            std::string_view meta_json, std::string_view rights_json) {
  std::string header = "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":" + protocol::json_quote(key.id) + "}";
  std::string payload = "{\"room\":" + protocol::json_quote(room) + ",\"exp\":" + std::to_string(expires_unix_s) +
                        ",\"meta\":" + std::string(meta_json.empty() ? "{}" : meta_json);
  if (!rights_json.empty()) payload += ",\"rights\":" + std::string(rights_json);
  payload += "}";
  std::string signed_part = domain::base64url(header) + "." + domain::base64url(payload);
  return signed_part + "." + domain::base64url(hmac_sha256(key.secret, signed_part));
}

}  // namespace sig::auth
