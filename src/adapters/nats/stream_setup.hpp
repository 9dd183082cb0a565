#pragma once
// The room-event stream: created if absent, checked (never changed) if
// present, since its limits and placement are the operator's.
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

namespace sig::nats {

class connection;

struct stream_shape {
  std::string stream = "SIGSTREAM";
  std::string subject_prefix = "sigstream";
  std::chrono::seconds max_age{24 * 3600};        // 0: keep forever
  std::int64_t max_bytes = 1024LL * 1024 * 1024;  // -1: no limit
  std::chrono::seconds duplicate_window{120};
  int replicas = 1;    // copies in a JetStream cluster, when created
  bool create = true;  // false (tools): a missing stream is an error
  // Log what is found and advise on it (an instance's second connection
  // checks the same stream quietly, so that each notice shows once).
  bool advise = true;
};

enum class stream_check {
  usable,
  unusable,  // exists in a shape sigstream cannot use, or absent and not to be created (logged)
  retry,     // NATS did not answer; try again
};

// What an existing stream allows (a stream sigstream creates allows both).
struct stream_features {
  bool rollup = true;  // Nats-Rollup: room snapshots can be written
  bool direct = true;  // AllowDirect: last messages are read with a direct get
  int replicas = 1;    // copies kept by a JetStream cluster
  // The server runs JetStream as a cluster: every stream, a bucket too, is
  // stored through a Raft group of its own, not inline as it is published.
  bool clustered = false;
};

// Blocking.
stream_check ensure_stream(connection& conn, stream_shape const& shape, stream_features& features);
// What the stream allows now, read again (an operator may have changed it:
// `nats stream edit`). Blocking; nullopt (logged) if it cannot be read.
std::optional<stream_features> read_stream_features(connection& conn, std::string const& stream);

}  // namespace sig::nats
