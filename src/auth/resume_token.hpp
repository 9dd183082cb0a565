#pragma once
// Resume tokens (docs/protocol.md `resume`): what lets a client whose connection
// dropped come back, on any instance, as the same peer. A token names the
// room, the peer, the peer's join and an expiry, and is signed with the
// cluster's resume secret, so any instance can check it without asking
// anyone, and nobody without the secret can make or alter one.
//
// Form: "r1." base64url(claims) "." base64url(HMAC-SHA256(secret, the text
// before the second dot)). The claims are four lines: room token, peer,
// join sequence, expiry (Unix seconds). Opaque to clients.
#include <cstdint>
#include <string>
#include <string_view>
#include <variant>

namespace sig::auth {

struct resume_claims {
  std::string room_token;  // domain::room_token of the room's name
  std::string peer;
  std::uint64_t join_seq = 0;
  std::int64_t expires_unix_s = 0;
  friend bool operator==(resume_claims const&, resume_claims const&) = default;
};

enum class token_problem {
  malformed,      // not a token of this form
  bad_signature,  // made without the secret, or altered
  expired,
};

std::string_view to_string(token_problem problem);

std::string issue_resume_token(resume_claims const& claims, std::string_view secret);

// Checks form, then signature, then expiry (against `now_unix_s`).
std::variant<resume_claims, token_problem> verify_resume_token(std::string_view token, std::string_view secret,
                                                               std::int64_t now_unix_s);

}  // namespace sig::auth
