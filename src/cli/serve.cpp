// `sigstream serve`: options in, a checked configuration out, and one
// app::instance run with it until SIGINT or SIGTERM has drained it.
#include <iostream>
#include <variant>

#include "app/instance.hpp"
#include "cli/commands.hpp"
#include "cli/logging.hpp"
#include "cli/serve_options.hpp"

namespace sig::cli {

int serve_command(int argc, char** argv) {
  // Here, not in main(): nats.c starts its own threads when opened, and the
  // history tools must block SIGINT before any thread exists (stream_tools).
  nats::open_library();
  app::instance_settings settings;
  options opts("serve",
               "Run one sigstream instance: WebSocket signaling on /ws (docs/protocol.md), /healthz, /readyz and\n"
               "/metrics on the same port. Any number of instances share one NATS JetStream stream.");
  declare_serve_options(opts, settings);
  if (auto done = opts.parse_or_exit(argc, argv)) return *done;
  auto checked = app::check_instance_settings(std::move(settings));
  if (auto const* why = std::get_if<std::string>(&checked)) {
    std::cerr << "sigstream serve: " << *why << "\n";
    return 2;
  }
  auto& config = std::get<app::instance_config>(checked);
  log_factory logs(config.settings.instance_id, config.settings.log_level);
  if (!logs.level_ok()) {
    std::cerr << "sigstream serve: --log-level '" << config.settings.log_level
              << "' is not one of trace, debug, info, warn, error, off\n";
    return 2;
  }
  app::instance instance(std::move(config), [&logs](std::string const& component) { return logs.make(component); },
                         SIGSTREAM_VERSION);
  return instance.run();
}

}  // namespace sig::cli
