#pragma once
// nats.c's statuses and JetStream's API error codes as std::error_code, so
// that a failed call carries what went wrong, not a bool or a line of text.
//
// - "nats": a natsStatus (NATS_TIMEOUT, NATS_CONNECTION_CLOSED, ...), worded
//   by natsStatus_GetText.
// - "jetstream": the err_code a JetStream API call answers with beside its
//   status (jsErrCode: 10065 subjects overlap, 10071 wrong last sequence,
//   ...), more precise than the NATS_ERR that comes with it.
//
// A nats code is equivalent to the event store port's condition where it
// means the same (append_condition in ports/event_store.hpp): a timeout is
// `timed_out`; a connection closed, lost, not yet made or with no server to
// go to is `not_connected`; no responders (no stream on the subject) is
// `refused`. Where a generic condition says the same, it is the code's
// default condition (NATS_TIMEOUT is std::errc::timed_out).
#include <string>
#include <system_error>

#include <nats/status.h>  // the two enums only, not nats.h

namespace sig::nats {

std::error_category const& nats_category();
std::error_category const& jetstream_category();

// NATS_OK: no error.
std::error_code nats_error(natsStatus status);
// A JetStream API call's failure: JetStream's own code when the server gave
// one, else nats.c's status. NATS_OK: no error.
std::error_code nats_error(natsStatus status, jsErrCode jetstream_code);
std::error_code jetstream_error(jsErrCode code);

// The connection is closed, lost, or never made: nats.c's callbacks have
// said so once already, and reconnects on its own (unless we closed it).
bool connection_gone(std::error_code ec);
// NATS is away or slow to answer, or nothing serves the subject for now
// (JetStream down, or electing a leader): what failed may succeed when
// tried again.
bool nats_outage(std::error_code ec);

// For a log line: the code's words, then nats.c's account of the calling
// thread's last failure (the calls it went through, the server's reason:
// "Authorization Violation"), on one line, since a log line that breaks
// loses its timestamp and instance id. Call it on the failed call's
// thread, before any other nats.c call.
std::string with_nats_trace(std::error_code ec);

}  // namespace sig::nats
