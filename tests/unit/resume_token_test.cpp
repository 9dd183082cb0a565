#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "auth/hmac.hpp"
#include "auth/resume_token.hpp"
#include "domain/room_name.hpp"

using namespace sig::auth;

namespace {

resume_claims claims() { return resume_claims{sig::domain::room_token("demo"), "pAbc", 41, 2'000'000'000}; }

token_problem problem_of(std::variant<resume_claims, token_problem> const& v) {
  REQUIRE(std::holds_alternative<token_problem>(v));
  return std::get<token_problem>(v);
}

}  // namespace

TEST_CASE("hmac: RFC 4231 test case 2", "[auth]") {
  auto mac = hmac_sha256("Jefe", "what do ya want for nothing?");
  CHECK(sig::domain::base64url(mac) == sig::domain::base64url(std::string(
      "\x5b\xdc\xc1\x46\xbf\x60\x75\x4e\x6a\x04\x24\x26\x08\x95\x75\xc7\x5a\x00\x3f\x08\x9d\x27\x39\x83\x9d\xec\x58\xb9"
      "\x64\xec\x38\x43", 32)));
  CHECK(hmac_sha256("Jefe", "what do ya want for nothing?") == mac);
  CHECK(hmac_sha256("Jeff", "what do ya want for nothing?") != mac);
  CHECK(constant_time_equal("abc", "abc"));
  CHECK_FALSE(constant_time_equal("abc", "abd"));
  CHECK_FALSE(constant_time_equal("abc", "abcd"));
  CHECK(random_secret() != random_secret());
}

TEST_CASE("hmac: RFC 4231 test case 6 (a key longer than the block is hashed first)", "[auth]") {
  auto mac = hmac_sha256(std::string(131, '\xaa'), "Test Using Larger Than Block-Size Key - Hash Key First");
  CHECK(sig::domain::base64url(mac) == sig::domain::base64url(std::string(
      "\x60\xe4\x31\x59\x1e\xe0\xb6\x7f\x0d\x8a\x26\xaa\xcb\xf5\xb7\x7f\x8e\x0b\xc6\x21\x37\x28\xc5\x14"
      "\x05\x46\x04\x0f\x0e\xe3\x7f\x54", 32)));
  // RFC 4231 test case 1: a 20-byte key.
  CHECK(sig::domain::base64url(hmac_sha256(std::string(20, '\x0b'), "Hi There")) ==
        sig::domain::base64url(std::string("\xb0\x34\x4c\x61\xd8\xdb\x38\x53\x5c\xa8\xaf\xce\xaf\x0b\xf1\x2b\x88\x1d"
                                           "\xc2\x00\xc9\x83\x3d\xa7\x26\xe9\x37\x6c\x2e\x32\xcf\xf7", 32)));
}

TEST_CASE("resume token: issued and verified with the same secret", "[auth][resume]") {
  auto token = issue_resume_token(claims(), "s3cret");
  auto verified = verify_resume_token(token, "s3cret", 1'900'000'000);
  REQUIRE(std::holds_alternative<resume_claims>(verified));
  CHECK(std::get<resume_claims>(verified) == claims());
}

TEST_CASE("resume token: another secret, or any altered byte, is a bad signature", "[auth][resume]") {
  auto token = issue_resume_token(claims(), "s3cret");
  CHECK(problem_of(verify_resume_token(token, "other", 0)) == token_problem::bad_signature);
  // Another peer's claims under a signature copied from a real token.
  auto forged_claims = claims();
  forged_claims.peer = "pSomeoneElse";
  auto forged = issue_resume_token(forged_claims, "guess");
  auto dot = token.rfind('.');
  CHECK(problem_of(verify_resume_token(forged.substr(0, forged.rfind('.')) + token.substr(dot), "s3cret", 0)) ==
        token_problem::bad_signature);
  // Every single-character change is refused (malformed or bad signature).
  std::string const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  for (std::size_t i = 0; i < token.size(); ++i) {
    std::string altered = token;
    altered[i] = altered[i] == 'A' ? 'B' : 'A';
    if (altered == token) continue;
    auto v = verify_resume_token(altered, "s3cret", 0);
    CHECK(std::holds_alternative<token_problem>(v));
  }
}

TEST_CASE("resume token: expiry is checked after the signature", "[auth][resume]") {
  auto c = claims();
  c.expires_unix_s = 1000;
  auto token = issue_resume_token(c, "k");
  CHECK(problem_of(verify_resume_token(token, "k", 1000)) == token_problem::expired);
  CHECK(std::holds_alternative<resume_claims>(verify_resume_token(token, "k", 999)));
  CHECK(problem_of(verify_resume_token(token, "wrong", 5000)) == token_problem::bad_signature);
}

TEST_CASE("resume token: malformed input", "[auth][resume]") {
  for (std::string bad : std::vector<std::string>{"", "r1.", "r1..", "x1.abc.def", "r1.abc", "r1.!!.AAAA", std::string(5000, 'r')})
    CHECK(problem_of(verify_resume_token(bad, "k", 0)) != token_problem::expired);
  // Well signed but not four lines, or numbers that are not numbers.
  auto sign = [](std::string body) {
    std::string part = "r1." + sig::domain::base64url(body);
    return part + "." + sig::domain::base64url(hmac_sha256("k", part));
  };
  CHECK(problem_of(verify_resume_token(sign("room\npeer\n1"), "k", 0)) == token_problem::malformed);
  CHECK(problem_of(verify_resume_token(sign("room\npeer\nx\n5"), "k", 0)) == token_problem::malformed);
  CHECK(problem_of(verify_resume_token(sign("room\npeer\n1\n-"), "k", 0)) == token_problem::malformed);
  CHECK(problem_of(verify_resume_token(sign("\npeer\n1\n5"), "k", 0)) == token_problem::malformed);
  CHECK(std::holds_alternative<resume_claims>(verify_resume_token(sign("room\npeer\n1\n5"), "k", 0)));
}
