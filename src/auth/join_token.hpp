#pragma once
// Join tokens (issue 6): a compact JWT (RFC 7519) signed with HS256 by the
// application's backend, which decides who may join which room as whom.
//
// Claims sigstream reads:
//   room    exact room name, or a prefix ending in "*" ("team-42/*")
//   exp     expiry, Unix seconds (required)
//   nbf     not before, Unix seconds (optional)
//   meta    the peer's meta object; the client's own `meta` is ignored
//   rights  optional object: {"signal": bool, "broadcast": bool}; both
//           default to true; both false is a receive-only peer
// The header must say "alg":"HS256" (anything else, "none" included, is
// refused); "kid" picks the key, and without it every key is tried.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace sig::auth {

struct signing_key {
  std::string id;      // "kid"
  std::string secret;  // HMAC-SHA256 key
};

// "kid1:secret1,kid2:secret2" (the first key signs). nullopt and `error`
// for an empty id or secret, a missing ':' or a repeated id.
std::optional<std::vector<signing_key>> parse_keys(std::string_view text, std::string* error);

struct join_claims {
  std::string room;           // as in the token: exact, or a prefix ending in '*'
  std::int64_t expires_unix_s = 0;
  std::string meta_json = "{}";
  bool may_signal = true;     // send signals to one peer
  bool may_broadcast = true;  // send signals to the whole room
};

enum class join_token_problem {
  malformed,       // not three base64url parts of JSON objects, or a claim of the wrong type
  bad_algorithm,   // "alg" is not HS256 ("none" included)
  unknown_key,     // "kid" names no configured key
  bad_signature,
  expired,
  not_yet_valid,
  missing_claim,   // no "room" or no "exp"
};

std::string_view to_string(join_token_problem problem);

std::variant<join_claims, join_token_problem> verify_join_token(std::string_view token,
                                                                std::vector<signing_key> const& keys,
                                                                std::int64_t now_unix_s);

// Does a token's `room` claim admit this room name?
bool room_admitted(std::string_view claim, std::string_view room);

// For `sigstream token` and tests: signs with `key` (its id goes in "kid").
// `meta_json` must be a JSON object; `rights_json` empty or a JSON object.
std::string mint_join_token(signing_key const& key, std::string_view room, std::int64_t expires_unix_s,
                            std::string_view meta_json, std::string_view rights_json = {});

}  // namespace sig::auth
