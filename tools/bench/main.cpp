// sigstream-bench: the load and measurement tool of sigstream, kept out of
// the product executable (and so out of the container image).
#include <string_view>

#include "adapters/codec/event_codec.hpp"
#include "bench/commands.hpp"

int main(int argc, char** argv) {
  sig::codec::silence_protobuf_log();
  if (argc > 1 && std::string_view(argv[1]) == "history") return sig::bench::history_bench_command(argc - 2, argv + 2);
  if (argc > 1 && std::string_view(argv[1]) == "join") return sig::bench::join_bench_command(argc - 2, argv + 2);
  if (argc > 1 && std::string_view(argv[1]) == "floor") return sig::bench::floor_bench_command(argc - 2, argv + 2);
  return sig::bench::cluster_bench_command(argc - 1, argv + 1);
}
