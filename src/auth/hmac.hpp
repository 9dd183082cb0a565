#pragma once
// HMAC-SHA256 and a constant-time comparison: the two primitives every
// signed token of sigstream (resume tokens; join tokens later) is built on.
#include <cstddef>
#include <string>
#include <string_view>

namespace sig::auth {

// The 32-byte MAC of `message` under `key`.
std::string hmac_sha256(std::string_view key, std::string_view message);

// Equal contents, in time that depends only on the lengths.
bool constant_time_equal(std::string_view a, std::string_view b);

// `bytes` random bytes from the kernel, base64url.
std::string random_token(std::size_t bytes);
// 32 random bytes from the kernel, base64url: a fresh secret.
std::string random_secret();

}  // namespace sig::auth
