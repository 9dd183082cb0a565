// An append's failure travels as a std::error_code of the event store's
// port; the room acts on the code, never on the text.
#include <catch2/catch.hpp>

#include "ports/event_store.hpp"

using sig::service::append_error;
using sig::service::append_result;

TEST_CASE("append errors: one category, a message for every code", "[append]") {
  for (auto code : {append_error::not_connected, append_error::overloaded, append_error::timed_out,
                    append_error::unconfirmed, append_error::refused, append_error::failed, append_error::closing}) {
    std::error_code ec = code;
    CHECK(ec.category() == sig::service::append_category());
    CHECK(std::string(ec.category().name()) == "sigstream.append");
    CHECK(ec.message() != "unknown append error");
    CHECK(ec == code);
    CHECK(ec);
  }
  CHECK_FALSE(std::error_code{});
}

TEST_CASE("append errors: stored or not is unknown only after a timeout or an unconfirmed duplicate", "[append]") {
  CHECK(append_result{false, 0, false, append_error::timed_out, {}}.outcome_unknown());
  CHECK(append_result{false, 0, false, append_error::unconfirmed, {}}.outcome_unknown());
  CHECK_FALSE(append_result{false, 0, false, append_error::overloaded, {}}.outcome_unknown());
  CHECK_FALSE(append_result{false, 0, false, append_error::not_connected, {}}.outcome_unknown());
  CHECK_FALSE(append_result{true, 7, false, {}, {}}.outcome_unknown());
}
