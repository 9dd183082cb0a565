#include "auth/hmac.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <sys/random.h>

#include "domain/room_name.hpp"

namespace sig::auth {

namespace {

// Fetched once: OpenSSL 3's one-shot HMAC() looks the algorithm up by name
// on every call (EVP_MAC_fetch, under locks), which made a join's resume
// token 6 % of an instance's I/O thread in a join burst.
EVP_MD const* sha256() {
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

constexpr std::size_t block_size = 64;  // SHA-256's

struct digest_ctx {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~digest_ctx() { EVP_MD_CTX_free(ctx); }
};

bool digest(EVP_MD_CTX* ctx, std::string_view a, std::string_view b, unsigned char* out) {
  unsigned int length = 0;
  return EVP_DigestInit_ex2(ctx, sha256(), nullptr) == 1 && EVP_DigestUpdate(ctx, a.data(), a.size()) == 1 &&
         EVP_DigestUpdate(ctx, b.data(), b.size()) == 1 && EVP_DigestFinal_ex(ctx, out, &length) == 1;
}

}  // namespace

// RFC 2104 over a prefetched SHA-256.
std::string hmac_sha256(std::string_view key, std::string_view message) {
  digest_ctx d;
  unsigned char hashed_key[32];
  if (key.size() > block_size) {
    if (!digest(d.ctx, key, {}, hashed_key)) return {};
    key = std::string_view(reinterpret_cast<char const*>(hashed_key), sizeof hashed_key);
  }
  char inner_pad[block_size];
  char outer_pad[block_size];
  for (std::size_t i = 0; i < block_size; ++i) {
    auto k = i < key.size() ? static_cast<unsigned char>(key[i]) : 0u;
    inner_pad[i] = static_cast<char>(k ^ 0x36u);
    outer_pad[i] = static_cast<char>(k ^ 0x5cu);
  }
  unsigned char inner[32];
  unsigned char mac[32];
  if (!digest(d.ctx, std::string_view(inner_pad, block_size), message, inner) ||
      !digest(d.ctx, std::string_view(outer_pad, block_size),
              std::string_view(reinterpret_cast<char const*>(inner), sizeof inner), mac))
    return {};
  return std::string(reinterpret_cast<char const*>(mac), sizeof mac);
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string random_token(std::size_t bytes) {
  std::string raw(bytes, '\0');
  std::size_t got = 0;
  while (got < bytes) {
    ssize_t n = getrandom(raw.data() + got, bytes - got, 0);
    if (n > 0) got += static_cast<std::size_t>(n);
  }
  return domain::base64url(raw);
}

std::string random_secret() { return random_token(32); }

}  // namespace sig::auth
