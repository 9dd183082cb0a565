// nats.c's statuses and JetStream's codes travel as std::error_code; a
// status is equivalent to the event store port's condition only where it
// means the same.
#include <catch2/catch.hpp>

#include <nats/status.h>

#include "adapters/nats/nats_errors.hpp"
#include "ports/event_store.hpp"

using sig::nats::jetstream_error;
using sig::nats::nats_error;
using sig::service::append_condition;
using sig::service::append_error;

TEST_CASE("nats errors: the category is named, worded by nats.c, and NATS_OK is no error", "[nats_errors]") {
  auto ec = nats_error(NATS_TIMEOUT);
  CHECK(std::string(ec.category().name()) == "nats");
  CHECK(ec.category() == sig::nats::nats_category());
  CHECK(ec.value() == NATS_TIMEOUT);
  CHECK(ec.message() == "Timeout");
  CHECK(nats_error(NATS_CONNECTION_CLOSED).message() == "Connection Closed");
  CHECK_FALSE(nats_error(NATS_OK));
}

TEST_CASE("nats errors: equivalent to the append conditions that mean the same", "[nats_errors]") {
  CHECK(nats_error(NATS_TIMEOUT) == append_condition(append_error::timed_out));
  for (auto gone : {NATS_CONNECTION_CLOSED, NATS_CONNECTION_DISCONNECTED, NATS_NO_SERVER, NATS_NOT_YET_CONNECTED}) {
    CHECK(nats_error(gone) == append_condition(append_error::not_connected));
    CHECK(sig::nats::connection_gone(nats_error(gone)));
  }
  CHECK(nats_error(NATS_NO_RESPONDERS) == append_condition(append_error::refused));
}

TEST_CASE("nats errors: and not to the others", "[nats_errors]") {
  CHECK(nats_error(NATS_TIMEOUT) != append_condition(append_error::not_connected));
  CHECK(nats_error(NATS_TIMEOUT) != append_condition(append_error::unconfirmed));
  CHECK(nats_error(NATS_CONNECTION_CLOSED) != append_condition(append_error::timed_out));
  CHECK(nats_error(NATS_CONNECTION_CLOSED) != append_condition(append_error::closing));
  for (auto unrelated : {NATS_ERR, NATS_NOT_FOUND, NATS_SLOW_CONSUMER, NATS_CONNECTION_AUTH_FAILED, NATS_IO_ERROR}) {
    for (auto code : {append_error::not_connected, append_error::overloaded, append_error::timed_out,
                      append_error::unconfirmed, append_error::refused, append_error::failed, append_error::closing})
      CHECK(nats_error(unrelated) != append_condition(code));
    CHECK_FALSE(sig::nats::connection_gone(nats_error(unrelated)));
  }
  // A code of the port's own category is still only itself.
  CHECK(std::error_code(append_error::timed_out) != nats_error(NATS_TIMEOUT));
}

TEST_CASE("nats errors: generic conditions where they say the same", "[nats_errors]") {
  CHECK(nats_error(NATS_TIMEOUT) == std::errc::timed_out);
  CHECK(nats_error(NATS_CONNECTION_CLOSED) == std::errc::not_connected);
  CHECK(nats_error(NATS_NO_MEMORY) == std::errc::not_enough_memory);
  CHECK(nats_error(NATS_ERR) != std::errc::timed_out);
  CHECK(nats_error(NATS_NOT_FOUND) != std::errc::no_such_file_or_directory);
}

TEST_CASE("nats errors: an outage is NATS away or slow, not a refusal or a mistake", "[nats_errors]") {
  CHECK(sig::nats::nats_outage(nats_error(NATS_TIMEOUT)));
  CHECK(sig::nats::nats_outage(nats_error(NATS_NO_SERVER)));
  CHECK(sig::nats::nats_outage(nats_error(NATS_NO_RESPONDERS)));
  CHECK_FALSE(sig::nats::nats_outage(nats_error(NATS_CONNECTION_AUTH_FAILED)));
  CHECK_FALSE(sig::nats::nats_outage(nats_error(NATS_SSL_ERROR)));
  CHECK_FALSE(sig::nats::nats_outage(jetstream_error(JSStreamSubjectOverlapErr)));
}

TEST_CASE("jetstream errors: JetStream's own code wins over the status beside it", "[nats_errors]") {
  auto overlap = nats_error(NATS_ERR, JSStreamSubjectOverlapErr);
  CHECK(std::string(overlap.category().name()) == "jetstream");
  CHECK(overlap.value() == 10065);
  CHECK(overlap == jetstream_error(JSStreamSubjectOverlapErr));
  CHECK(overlap.message() == "subjects overlap with an existing stream");
  CHECK(jetstream_error(JSStreamWrongLastSequenceErr).message() == "wrong last sequence");
  CHECK(jetstream_error(static_cast<jsErrCode>(10999)).message() == "JetStream error 10999");
  // No code from the server: nats.c's status.
  CHECK(nats_error(NATS_TIMEOUT, static_cast<jsErrCode>(0)) == nats_error(NATS_TIMEOUT));
  CHECK_FALSE(nats_error(NATS_OK, JSStreamSubjectOverlapErr));
  CHECK_FALSE(jetstream_error(static_cast<jsErrCode>(0)));
  CHECK(overlap != append_condition(append_error::refused));
}

TEST_CASE("nats errors: the log text starts with the code's words, on one line", "[nats_errors]") {
  auto text = sig::nats::with_nats_trace(nats_error(NATS_TIMEOUT));
  CHECK(text.rfind("Timeout", 0) == 0);
  CHECK(text.find('\n') == std::string::npos);
}
