// URLs lose their credentials before they reach a log or a message.
#include <catch2/catch.hpp>

#include "auth/url_credentials.hpp"

using sig::auth::url_without_credentials;

TEST_CASE("credentials are masked in URLs, and nothing else changes") {
  CHECK(url_without_credentials("nats://user:secret@10.0.0.1:4222") == "nats://user:***@10.0.0.1:4222");
  CHECK(url_without_credentials("nats://s3cr3t-token@nats:4222") == "nats://***@nats:4222");
  CHECK(url_without_credentials("redis://:pw@redis:6379/2") == "redis://***@redis:6379/2");
  CHECK(url_without_credentials("tls://a:b@h1:4222,tls://c:d@h2:4222") == "tls://a:***@h1:4222,tls://c:***@h2:4222");
  CHECK(url_without_credentials("nats://127.0.0.1:4222") == "nats://127.0.0.1:4222");
  CHECK(url_without_credentials("redis://host/path@not-userinfo") == "redis://host/path@not-userinfo");
  CHECK(url_without_credentials("user:pw@host:1") == "user:***@host:1");
  // A raw @ in the password: the last @ ends the userinfo, so all of it is masked.
  CHECK(url_without_credentials("nats://us@er:p@ss@host") == "nats://us@er:***@host");
  CHECK(url_without_credentials("") == "");
}
