#include <catch2/catch.hpp>

#include "adapters/nats/connection.hpp"

using sig::nats::server_urls;
using list = std::vector<std::string>;

TEST_CASE("server_urls: one URL, or a comma-separated cluster with blanks around entries", "[nats]") {
  CHECK(server_urls("nats://127.0.0.1:4222") == list{"nats://127.0.0.1:4222"});
  CHECK(server_urls("nats://a:4222,nats://b:4222, nats://c:4222 ") ==
        list{"nats://a:4222", "nats://b:4222", "nats://c:4222"});
  CHECK(server_urls("tls://u:p@a:4222,,tls://u:p@b:4222,") == list{"tls://u:p@a:4222", "tls://u:p@b:4222"});
  CHECK(server_urls("").empty());
  CHECK(server_urls(" , ").empty());
}
