// Which file a request target names: never anything outside the web root.
#include <catch2/catch.hpp>

#include "protocol/static_path.hpp"

using sig::protocol::media_type_for;
using sig::protocol::static_file_for;

TEST_CASE("plain targets name files under the web root", "[static]") {
  CHECK(static_file_for("/") == "index.html");
  CHECK(static_file_for("/sigstream.js") == "sigstream.js");
  CHECK(static_file_for("/lib/sigstream.d.ts") == "lib/sigstream.d.ts");
  CHECK(static_file_for("/sigstream.js?v=3") == "sigstream.js");
  CHECK(static_file_for("/a%20b.html") == "a b.html");
  CHECK(static_file_for("/?x=1") == "index.html");
}

TEST_CASE("a target ending in a slash names its folder's index page", "[static]") {
  CHECK(static_file_for("/admin/") == "admin/index.html");
  CHECK(static_file_for("/a/b/?room=x") == "a/b/index.html");
}

TEST_CASE("targets that could leave the web root, or are not plain paths, name nothing", "[static]") {
  for (char const* target : {"/..", "/../etc/passwd", "/a/../../etc/passwd", "/a/..", "/%2e%2e/etc/passwd",
                             "/%2E%2E%2Fetc%2Fpasswd", "/a/%2e%2e/%2e%2e/x", "/./x", "/a//b", "//etc/passwd",
                             "/a\\..\\b", "/a%5c..%5cb", "/a%00.html", "/x%", "/x%2", "/x%zz", "", "x", "/../", "/a//", "/a/%2e%2e/"}) {
    INFO(target);
    CHECK_FALSE(static_file_for(target));
  }
}

TEST_CASE("media types follow the extension", "[static]") {
  CHECK(media_type_for("index.html") == "text/html; charset=utf-8");
  CHECK(media_type_for("sigstream.js") == "text/javascript; charset=utf-8");
  CHECK(media_type_for("sigstream.d.ts") == "text/plain; charset=utf-8");
  CHECK(media_type_for("style.css") == "text/css; charset=utf-8");
  CHECK(media_type_for("logo.svg") == "image/svg+xml");
  CHECK(media_type_for("blob") == "application/octet-stream");
  CHECK(media_type_for(".js") == "application/octet-stream");
}
