// sigstream: WebRTC signaling across any number of instances, with room
// history in NATS JetStream.
#include <iostream>
#include <string_view>

#include "adapters/codec/event_codec.hpp"
#include "cli/commands.hpp"

namespace {

constexpr char usage[] =
    "Usage: sigstream COMMAND [options]\n"
    "\n"
    "WebRTC signaling that stays correct across any number of instances: every join,\n"
    "leave and signal is an event in NATS JetStream, and every instance rebuilds room\n"
    "membership by replaying those events.\n"
    "\n"
    "Commands:\n"
    "  serve      run an instance (WebSocket /ws, /healthz, /readyz, /metrics)\n"
    "  history    print a room's events from the stream (table, jsonl, mermaid, html)\n"
    "  state      print a room's membership at a point of its history\n"
    "  rooms      list the rooms that have history\n"
    "  cluster    list the live instances, from their heartbeats\n"
    "  token      mint a join token with the instances' keys (development and tests)\n"
    "  version    print the version\n"
    "\n"
    "Every option can also be set through an environment variable SIGSTREAM_<OPTION>,\n"
    "e.g. --nats-url is SIGSTREAM_NATS_URL. 'sigstream COMMAND --help' lists them all.\n"
    "\n"
    "The load tool is a separate executable, sigstream-bench (not in the container image).\n";

}  // namespace

int main(int argc, char** argv) {
  sig::codec::silence_protobuf_log();
  if (argc < 2) {
    std::cerr << usage;
    return 2;
  }
  std::string_view command = argv[1];
  if (command == "--help" || command == "-h" || command == "help") {
    std::cout << usage;
    return 0;
  }
  if (command == "version" || command == "--version") {
    std::cout << "sigstream " << SIGSTREAM_VERSION << "\n";
    return 0;
  }
  if (command == "serve") return sig::cli::serve_command(argc - 2, argv + 2);
  if (command == "history") return sig::cli::history_command(argc - 2, argv + 2);
  if (command == "state") return sig::cli::state_command(argc - 2, argv + 2);
  if (command == "rooms") return sig::cli::rooms_command(argc - 2, argv + 2);
  if (command == "cluster") return sig::cli::cluster_command(argc - 2, argv + 2);
  if (command == "token") return sig::cli::token_command(argc - 2, argv + 2);
  std::cerr << "sigstream: unknown command '" << command << "'\n\n" << usage;
  return 2;
}
