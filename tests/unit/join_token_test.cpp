#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "auth/hmac.hpp"
#include "auth/join_token.hpp"
#include "domain/room_name.hpp"

using namespace sig::auth;

namespace {

std::vector<signing_key> const keys = {{"k1", "first-secret"}, {"k2", "second-secret"}};
constexpr std::int64_t now = 1'800'000'000;

join_token_problem problem_of(std::variant<join_claims, join_token_problem> const& v) {
  REQUIRE(std::holds_alternative<join_token_problem>(v));
  return std::get<join_token_problem>(v);
}

join_claims claims_of(std::variant<join_claims, join_token_problem> const& v) {
  if (auto const* p = std::get_if<join_token_problem>(&v)) FAIL("refused: " << to_string(*p));
  return std::get<join_claims>(v);
}

// A token with any header and payload text, signed with `secret`.
std::string raw_token(std::string const& header, std::string const& payload, std::string const& secret) {
  std::string part = sig::domain::base64url(header) + "." + sig::domain::base64url(payload);
  return part + "." + sig::domain::base64url(hmac_sha256(secret, part));
}

}  // namespace

TEST_CASE("join token: keys parse as KID:SECRET,...", "[auth][join]") {
  std::string error;
  auto parsed = parse_keys("k1:s1,k2:s:2", &error);
  REQUIRE(parsed);
  REQUIRE(parsed->size() == 2);
  CHECK((*parsed)[1].id == "k2");
  CHECK((*parsed)[1].secret == "s:2");
  for (std::string_view bad : {"", "k1", ":s", "k1:", "k1:a,k1:b", "k1:a,,k2:b"}) CHECK_FALSE(parse_keys(bad, &error));
}

TEST_CASE("join token: minted tokens verify with their claims", "[auth][join]") {
  auto token = mint_join_token(keys[0], "demo", now + 60, R"({"name":"ana"})", R"({"broadcast":false})");
  auto c = claims_of(verify_join_token(token, keys, now));
  CHECK(c.room == "demo");
  CHECK(c.expires_unix_s == now + 60);
  CHECK(c.meta_json == R"({"name":"ana"})");
  CHECK(c.may_signal);
  CHECK_FALSE(c.may_broadcast);
  // Signed with the second key (rotation): still accepted.
  CHECK(claims_of(verify_join_token(mint_join_token(keys[1], "demo", now + 60, "{}"), keys, now)).room == "demo");
}

TEST_CASE("join token: every failure the issue names is refused", "[auth][join]") {
  auto good = mint_join_token(keys[0], "demo", now + 60, "{}");
  CHECK(problem_of(verify_join_token(good, keys, now + 60)) == join_token_problem::expired);
  CHECK(problem_of(verify_join_token(mint_join_token({"k1", "wrong"}, "demo", now + 60, "{}"), keys, now)) ==
        join_token_problem::bad_signature);
  CHECK(problem_of(verify_join_token(mint_join_token({"k9", "x"}, "demo", now + 60, "{}"), keys, now)) ==
        join_token_problem::unknown_key);
  // alg none, with or without a signature; other algorithms.
  CHECK(problem_of(verify_join_token(raw_token(R"({"alg":"none"})", R"({"room":"demo","exp":1900000000})", ""), keys, now)) ==
        join_token_problem::bad_algorithm);
  std::string unsigned_token = sig::domain::base64url(R"({"alg":"none","typ":"JWT"})") + "." +
                               sig::domain::base64url(R"({"room":"demo","exp":1900000000})") + ".";
  CHECK(problem_of(verify_join_token(unsigned_token, keys, now)) == join_token_problem::bad_algorithm);
  CHECK(problem_of(verify_join_token(raw_token(R"({"alg":"HS512"})", R"({"room":"demo","exp":1900000000})", "first-secret"),
                                     keys, now)) == join_token_problem::bad_algorithm);
  CHECK(problem_of(verify_join_token(raw_token(R"({"alg":"hs256"})", R"({"room":"demo","exp":1900000000})", "first-secret"),
                                     keys, now)) == join_token_problem::bad_algorithm);
  // Malformed.
  for (std::string bad : std::vector<std::string>{"", "a.b", "a.b.c.d", "!!.e30.e30", good + "x", std::string(9000, 'a')})
    CHECK(std::holds_alternative<join_token_problem>(verify_join_token(bad, keys, now)));
  CHECK(problem_of(verify_join_token(raw_token(R"({"alg":"HS256"})", "[1]", "first-secret"), keys, now)) ==
        join_token_problem::malformed);
  CHECK(problem_of(verify_join_token(raw_token(R"({"alg":"HS256"})", R"({"room":"demo"})", "first-secret"), keys, now)) ==
        join_token_problem::missing_claim);
  CHECK(problem_of(verify_join_token(raw_token(R"({"alg":"HS256"})", R"({"room":5,"exp":1900000000})", "first-secret"),
                                     keys, now)) == join_token_problem::malformed);
  CHECK(problem_of(verify_join_token(raw_token(R"({"alg":"HS256"})", R"({"room":"d","exp":1900000000,"meta":[1]})",
                                               "first-secret"), keys, now)) == join_token_problem::malformed);
  CHECK(problem_of(verify_join_token(raw_token(R"({"alg":"HS256"})", R"({"room":"d","exp":1900000000,"nbf":1900000000})",
                                               "first-secret"), keys, now)) == join_token_problem::not_yet_valid);
  CHECK(problem_of(verify_join_token(raw_token(R"({"alg":"HS256"})",
                                               R"({"room":"d","exp":1900000000,"rights":{"signal":"yes"}})", "first-secret"),
                                     keys, now)) == join_token_problem::malformed);
  // An altered payload under the original signature.
  auto dot = good.find('.');
  auto altered = good.substr(0, dot + 1) + sig::domain::base64url(R"({"room":"*","exp":1900000000,"meta":{}})") +
                 good.substr(good.rfind('.'));
  CHECK(problem_of(verify_join_token(altered, keys, now)) == join_token_problem::bad_signature);
}

TEST_CASE("join token: room claims are exact names or prefixes ending in *", "[auth][join]") {
  CHECK(room_admitted("demo", "demo"));
  CHECK_FALSE(room_admitted("demo", "demo2"));
  CHECK_FALSE(room_admitted("demo", "dem"));
  CHECK(room_admitted("team-42/*", "team-42/standup"));
  CHECK(room_admitted("team-42/*", "team-42/"));
  CHECK_FALSE(room_admitted("team-42/*", "team-43/standup"));
  CHECK(room_admitted("*", "anything"));
  CHECK_FALSE(room_admitted("a*b", "ab"));  // only a trailing * is a wildcard
}

TEST_CASE("random tokens: the asked number of bytes, base64url, never the same twice") {
  auto a = random_token(16);
  auto b = random_token(16);
  CHECK(a.size() == 22);  // 16 bytes, unpadded base64url
  CHECK(a != b);
  CHECK(a.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == std::string::npos);
  CHECK(random_secret().size() == 43);  // 32 bytes
}
