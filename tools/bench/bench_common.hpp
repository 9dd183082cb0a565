#pragma once
// What the commands of sigstream-bench (the cluster bench, `history`, `join`) share:
// clocks, the machine's load, child processes, and filling a stream of
// their own through a bounded window of publishes. No Beast, no Asio.
#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "adapters/nats/event_log.hpp"

namespace sig::bench {

using steady = std::chrono::steady_clock;

// The report's timestamps, UTC; `format` as strftime's.
std::string utc_now(char const* format = "%Y-%m-%dT%H:%M:%SZ");
std::int64_t wall_ms();
double seconds_since(steady::time_point start);
double ms_between(steady::time_point from, steady::time_point to);

// The 1, 5 and 15 minute load averages: the machine may be shared, and a
// run's figures mean little without them.
std::string load_average();

// Where a symlink such as /proc/self/exe points, so that the summary names
// the executable actually timed; `path` itself if it is no link.
std::string resolved_path(std::string const& path);

// The product executable `sigstream` beside this one (the build directory,
// or wherever both were installed), for the commands that run it as a child.
std::string product_binary_beside_this_one();

// The environment without SIGSTREAM_* variables: a child configured by its
// flags alone, whatever the shell exported (an admin token, a thread count,
// a Redis URL...).
std::vector<std::string> clean_environment();

// A loopback port nobody listens on now. Whoever binds it a moment later
// may find it taken meanwhile, and must be ready to try another.
std::optional<std::uint16_t> free_port();

// A new directory <temp dir>/<prefix>XXXXXX (TMPDIR, else /tmp); nullopt and
// *error when it cannot be made.
std::optional<std::string> make_temp_dir(std::string const& prefix, std::string* error);

// A child started with posix_spawn, stdin on /dev/null so that it never
// waits on the terminal. Its output goes to the descriptors given (dup2'd
// onto its stdout and stderr), or else to `log_path`, both streams.
struct child_output {
  int stdout_fd = -1, stderr_fd = -1;
  std::string log_path;
};
enum class child_environment { inherited, without_sigstream_variables };
struct spawned_child {
  pid_t pid = 0;  // 0: not started, `error` says why
  steady::time_point started;  // just before the spawn
  std::string error;
};
spawned_child spawn_child(std::vector<std::string> args, child_output const& output, child_environment environment);

// Our own child, started with spawn_child (stdin /dev/null, both streams to
// a log file) and stopped by its pid only: SIGTERM, then SIGKILL after a
// bound; killed when this object goes.
class child_process {
 public:
  child_process() = default;
  child_process(child_process const&) = delete;
  child_process& operator=(child_process const&) = delete;
  ~child_process() { kill_now(); }

  bool spawn(std::vector<std::string> args, std::string const& log_path, child_environment environment,
             std::string& error);

  steady::time_point started() const { return started_; }
  int pid() const { return pid_; }

  // True once the process has exited (and was reaped).
  bool exited();

  // SIGTERM, then up to `limit` for a clean exit, then SIGKILL. Returns the
  // milliseconds from SIGTERM to exit (or -1 if it had to be killed).
  double stop(std::chrono::milliseconds limit);

  int exit_code() const { return exit_code_; }
  std::string const& how_ended() const { return how_ended_; }

 private:
  void kill_now();
  void record(int status, bool reaped);

  pid_t pid_ = 0;
  steady::time_point started_;
  int exit_code_ = -1;
  std::string how_ended_ = "running";
};

struct spread {
  double min = 0, median = 0, max = 0;
};
spread spread_of(std::vector<double> values);

// The log a bench fills its own stream through: created if missing, no age
// limit, writes batched (the fill is throughput, not latency).
nats::log_settings fill_log_settings(std::string const& url, std::string const& stream, std::string const& prefix,
                                     std::string const& client_name);

// Publishes in flight, bounded. Runs on the bench thread (acquire, drain) and
// on nats.c's acknowledgement thread (done).
class publish_window {
 public:
  explicit publish_window(std::uint64_t limit) : limit_(limit) {}

  // False when no acknowledgement came for `stall` (the server is stuck).
  bool acquire(std::chrono::milliseconds stall);
  void done(nats::append_result const& r);
  bool drain(std::chrono::milliseconds limit);
  std::uint64_t acked();
  std::uint64_t failed();
  std::string first_error();

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::uint64_t limit_, in_flight_ = 0, acked_ = 0, failed_ = 0;
  std::string first_error_;
};

// Messages per subject under the prefix; nullopt if unreadable.
std::optional<std::map<std::string, std::uint64_t>> stream_counts(nats::event_log& log, std::string const& prefix);

// Starts `log` on the bench's own stream and returns what it already holds
// under `prefix`, so the caller can refuse a stream that is not its own;
// nullopt once it has said why on stderr, as `who`.
std::optional<std::map<std::string, std::uint64_t>> open_stream(nats::event_log& log, std::string const& who,
                                                                std::string const& url, std::string const& stream,
                                                                std::string const& prefix);

// The machine's facts for the report, with the load average at the start
// (given) and at the end (now).
std::map<std::string, std::string> machine_with_load(std::string const& load_at_start);
// "machine: N CPUs (...), ... at end\n", the summary's line.
std::string machine_line(std::map<std::string, std::string> const& machine);
// The members of a JSON object of strings, without the braces.
std::string json_members(std::map<std::string, std::string> const& values);

// The summary on stdout, then the JSON report into `report`, or after the
// summary when no file is named. False (said on stderr, as `who`) when the
// file could not be written.
bool deliver_report(std::string const& text, std::string const& json, std::string const& report,
                    std::string const& who);

}  // namespace sig::bench
