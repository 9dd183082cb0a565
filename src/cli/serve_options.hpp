#pragma once
// `sigstream serve`'s options: each field of app::instance_settings with
// its flag, its SIGSTREAM_* variable and its --help text.
#include "app/instance_config.hpp"
#include "cli/nats_security_options.hpp"
#include "cli/options.hpp"

namespace sig::cli {

// Declares every option of `sigstream serve` into `s`, in the groups
// --help shows.
void declare_serve_options(options& opts, app::instance_settings& s);

}  // namespace sig::cli
