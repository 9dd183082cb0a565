#pragma once
// The NATS credential and TLS options of every command that reaches NATS
// (serve and the stream tools), declared once.
#include "adapters/nats/event_log.hpp"
#include "cli/options.hpp"

namespace sig::cli {

void declare_nats_security(options& opts, nats::nats_security* security);

}  // namespace sig::cli
