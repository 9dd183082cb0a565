// `sigstream-bench`: drives a running cluster (through HAProxy by default)
// with rooms whose peers sit on different instances, and reports join
// latency, end-to-end signal latency at fixed rates, the highest lossless
// rate, memory per idle peer and CPU per relayed signal. With --systems
// sigstream,socketio it then starts the Socket.IO baseline, drives it with
// the same workloads, and reports both side by side.
#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <string>
#include <string_view>

#include "bench/baseline_cluster.hpp"
#include "bench/bench_common.hpp"
#include "bench/bench_protocol.hpp"
#include "bench/bench_results.hpp"
#include "bench/bench_runner.hpp"
#include "bench/bench_system.hpp"
#include "bench/commands.hpp"
#include "cli/options.hpp"

namespace sig::bench {

using cli::options;

namespace {

// Every count and time has a ceiling, so a run always ends by itself.
std::string check(bench::bench_settings const& s) {
  auto in = [](std::int64_t v, std::int64_t lo, std::int64_t hi) { return v >= lo && v <= hi; };
  using std::chrono::milliseconds;
  if (s.placement != "haproxy" && s.placement != "direct") return "--placement must be haproxy or direct";
  if (s.room_spread != "spread" && s.room_spread != "together") return "--room-spread must be spread or together";
  for (auto const& phase : bench::split_list(s.phases))
    if (phase != "memory" && phase != "join" && phase != "signal" && phase != "isolation")
      return fmt::format("--phases: unknown phase '{}' (memory, join, signal, isolation)", phase);
  if (!in(s.rooms, 1, 5000)) return "--rooms must be 1..5000";
  if (!in(s.room_size, 2, 50)) return "--room-size must be 2..50";
  if (s.rooms * s.room_size > 10000) return "--rooms x --room-size must be at most 10000";
  if (!bench::parse_rates(s.rates, bench::highest_signal_rate))
    return "--rates needs 1..20 rates, each a whole number in 1.." + std::to_string(bench::highest_signal_rate);
  if (s.duration < milliseconds(500) || s.duration > milliseconds(60'000)) return "--duration must be 500ms..60s";
  if (!in(s.max_rate, 1, bench::highest_signal_rate))
    return "--max-rate must be 1.." + std::to_string(bench::highest_signal_rate);
  if (!in(s.rate_step, 0, 100'000)) return "--rate-step must be 0..100000";
  if (!in(s.search_steps, 0, 5)) return "--search-steps must be 0..5";
  if (s.drain < milliseconds(0) || s.drain > milliseconds(30'000)) return "--drain must be 0..30s";
  if (s.settle < milliseconds(0) || s.settle > milliseconds(30'000)) return "--settle must be 0..30s";
  if (!in(s.payload_bytes, 0, 60'000)) return "--payload-bytes must be 0..60000";
  if (!in(s.idle_peers, 0, 10'000)) return "--idle-peers must be 0..10000";
  if (s.idle_settle < milliseconds(0) || s.idle_settle > milliseconds(60'000)) return "--idle-settle must be 0..60s";
  if (s.join_pace < milliseconds(0) || s.join_pace > milliseconds(1000)) return "--join-pace must be 0..1s";
  if (s.join_timeout < milliseconds(100) || s.join_timeout > milliseconds(60'000)) return "--join-timeout must be 100ms..60s";
  if (s.connect_timeout < milliseconds(100) || s.connect_timeout > milliseconds(60'000))
    return "--connect-timeout must be 100ms..60s";
  if (!in(s.connect_window, 1, 1000)) return "--connect-window must be 1..1000";
  if (!in(s.isolation_rooms, 1, 1000)) return "--isolation-rooms must be 1..1000";
  if (!in(s.isolation_rate, 1, 200'000)) return "--isolation-rate must be 1..200000";
  if (s.isolation_duration < milliseconds(500) || s.isolation_duration > milliseconds(60'000))
    return "--isolation-duration must be 500ms..60s";
  if (!in(s.client_threads, 1, 2)) return "--client-threads must be 1 or 2";
  auto systems = bench::split_list(s.systems);
  if (systems.empty() || systems.size() > 2) return "--systems needs sigstream, socketio or both";
  for (auto const& system : systems) {
    if (system != "sigstream" && system != "socketio")
      return fmt::format("--systems: unknown system '{}' (sigstream, socketio)", system);
    if (std::count(systems.begin(), systems.end(), system) > 1) return "--systems names " + system + " twice";
  }
  bool baseline = std::find(systems.begin(), systems.end(), "socketio") != systems.end();
  if (baseline && s.placement == "direct") return "--placement direct is for sigstream only: the baseline has no instance URLs";
  if (!in(s.baseline_instances, 1, 8)) return "--baseline-instances must be 1..8";
  if (!in(s.overload_rate, 0, 200'000)) return "--overload-rate must be 0..200000";
  if (s.lossless_p99 < milliseconds(1) || s.lossless_p99 > milliseconds(60'000))
    return "--lossless-p99 must be 1ms..60s";
  if (s.overload_duration < milliseconds(1000) || s.overload_duration > milliseconds(120'000))
    return "--overload-duration must be 1s..2m";
  if (!in(s.recovery_rate, 1, 200'000)) return "--recovery-rate must be 1..200000";
  if (s.recovery_duration < milliseconds(1000) || s.recovery_duration > milliseconds(60'000))
    return "--recovery-duration must be 1s..60s";
  return {};
}

}  // namespace

int cluster_bench_command(int argc, char** argv) {
  bench::bench_settings s;
  s.baseline_dir = SIGSTREAM_BENCH_BASELINE_DIR;
  options opts("",
               "Drive a running sigstream cluster and report what it does: join latency, end-to-end signal latency\n"
               "at fixed rates, the highest rate with nothing lost and p99 under 50 ms, resident memory per idle\n"
               "peer, and CPU time per relayed signal for every server process. Rooms of --room-size peers are\n"
               "placed on different instances (read from X-Sigstream-Instance). Loopback addresses only; every\n"
               "phase is bounded in count and time. The report goes to stdout, progress to stderr.\n"
               "--systems sigstream,socketio then starts the classic design, 2 Socket.IO 4.8 instances with\n"
               "@socket.io/redis-adapter 8.3 and Redis behind HAProxy in mode tcp (tools/bench/baseline/, on free\n"
               "loopback ports, stopped at the end), drives it with the same workloads over Socket.IO's own wire\n"
               "protocol, and prints every figure of both side by side: one system after the other, never together.\n"
               "`sigstream-bench history` instead measures `sigstream history` on a large stream of its own\n"
               "(see `sigstream-bench history --help`), and `sigstream-bench join` the first join of a room on a\n"
               "fresh instance against the length of its history (see `sigstream-bench join --help`).",
               "sigstream-bench");
  opts.add_string("systems", &s.systems,
                  "What to measure, one after the other in this order: sigstream (the running cluster at --url) and "
                  "socketio (the Socket.IO + Redis adapter baseline, started by the bench; needs node, redis-server, "
                  "haproxy and the node modules of the checkout's package-lock.json).");
  opts.add_string("url", &s.url, "WebSocket URL of sigstream's load balancer (ws://, loopback only).");
  opts.add_string("instance-urls", &s.instance_urls,
                  "Comma-separated direct instance URLs (ws://127.0.0.1:PORT/ws), for /metrics and --placement direct "
                  "(default: from the pid directory's NAME.port files or the instances' --listen).");
  opts.add_string("placement", &s.placement,
                  "haproxy: connect through --url and group connections into rooms by the instance each landed on; "
                  "direct: connect to --instance-urls round-robin.");
  opts.add_string("phases", &s.phases, "Which phases to run, in this order: memory, join, signal, isolation.");
  opts.add_int("rooms", &s.rooms, "Rooms for the join and signal phases.");
  opts.add_int("room-size", &s.room_size, "Peers per room (spread over as many instances as there are).");
  opts.add_string("room-spread", &s.room_spread,
                  "spread: each room's peers on as many instances as there are; together: all peers of a room on one "
                  "instance (rooms balanced over the instances), so that only one instance follows each room: what "
                  "delivering a signal only to its target's instance could gain at most.");
  opts.add_string("rates", &s.rates, "Fixed signal rates to run, per second, comma-separated.");
  opts.add_duration("duration", &s.duration, "How long each rate runs (500ms..60s).");
  opts.add_int("max-rate", &s.max_rate, "Past the last fixed rate, step up by --rate-step until a rate fails, at most this.");
  opts.add_int("rate-step", &s.rate_step, "Step for the search past the fixed rates (0: no search).");
  opts.add_int("search-steps", &s.search_steps, "Bisection steps between the best passing and the first failing rate.");
  opts.add_duration("lossless-p99", &s.lossless_p99,
                    "A rate passes when nothing is lost and its p99 is under this (the figures use 50ms; a test of "
                    "the tool on a busy machine may give more).");
  opts.add_duration("drain", &s.drain, "After each rate, how long to wait for signals still on their way.");
  opts.add_duration("settle", &s.settle, "Pause between rate steps.");
  opts.add_int("payload-bytes", &s.payload_bytes, "Padding inside each signal's data, besides its timestamp.");
  opts.add_int("idle-peers", &s.idle_peers, "Idle peers for the memory phase, joined to rooms of --room-size.");
  opts.add_duration("idle-settle", &s.idle_settle, "Wait after the idle peers joined, before reading RSS.");
  opts.add_duration("join-pace", &s.join_pace, "Pause between sequential joins.");
  opts.add_duration("join-timeout", &s.join_timeout, "How long one join may take before it counts as unanswered.");
  opts.add_duration("connect-timeout", &s.connect_timeout, "Bound on each connect, handshake, close and /metrics read.");
  opts.add_int("connect-window", &s.connect_window, "WebSocket handshakes in flight at once.");
  opts.add_int("isolation-rooms", &s.isolation_rooms, "Rooms for the isolation phase (rooms on all but the last instance).");
  opts.add_int("isolation-rate", &s.isolation_rate, "Signal rate of the isolation phase, per second.");
  opts.add_duration("isolation-duration", &s.isolation_duration, "How long the isolation phase sends.");
  opts.add_int("client-threads", &s.client_threads, "Threads running the bench's io_context (1 or 2).");
  opts.add_flag("signal-acks", &s.signal_acks,
                "Every signal asks for an acknowledgement (a request id), as the client library does; the report "
                "then tells acknowledged-then-lost from refused. --signal-acks=false sends signals without one, as "
                "runs before this option did.");
  opts.add_flag("overload", &s.overload,
                "After the signal steps, an overload step: --overload-rate (default 3 x the highest lossless rate) "
                "for --overload-duration, then at once --recovery-rate for --recovery-duration. Reports what was "
                "refused, what was lost after an acknowledgement, how soon p99 was back under 5 ms, and whether an "
                "instance was taken for dead.");
  opts.add_int("overload-rate", &s.overload_rate, "Signal rate of the overload step; 0: 3 x the highest lossless rate.");
  opts.add_duration("overload-duration", &s.overload_duration, "How long the overload step sends (1s..2m).");
  opts.add_int("recovery-rate", &s.recovery_rate, "Signal rate right after the overload.");
  opts.add_duration("recovery-duration", &s.recovery_duration,
                    "How long the recovery step sends (1s..60s); its p99 is measured per second.");
  opts.add_int("baseline-instances", &s.baseline_instances, "Socket.IO instances of the baseline (1..8).");
  opts.add_string("baseline-dir", &s.baseline_dir,
                  "The baseline's folder: server.mjs and the haproxy.cfg template (default: tools/bench/baseline of "
                  "the checkout this was built from).");
  opts.add_string("pids", &s.pids,
                  "Server processes to watch, NAME=PID,... (e.g. i1=123,nats=45,redis=67,haproxy=89); "
                  "roles come from /proc/PID/comm, instance names should be their instance ids.");
  opts.add_string("pid-dir", &s.pid_dir, "Directory of NAME.pid (and NAME.port) files, as scripts/dev writes; used without --pids.");
  opts.add_string("json", &s.json_path, "Also write every figure as JSON to this file.");
  opts.add_string("label", &s.label, "A label for this run, printed in the report.");
  opts.add_string("trace", &s.trace_path,
                  "Diagnostics: write every signal sent (step, n, room, instances, time) and received to this file.");
  if (auto done = opts.parse_or_exit(argc, argv)) return *done;
  if (auto problem = check(s); !problem.empty()) {
    std::cerr << "sigstream-bench: " << problem << "\n";
    return 2;
  }
  // Refuse anything but loopback before touching the network.
  for (auto const& text : std::vector<std::string>{s.url}) {
    auto parsed = bench::parse_loopback_url(text);
    if (!parsed.url) {
      std::cerr << "sigstream-bench: --url " << parsed.error << "\n";
      return 2;
    }
  }
  for (auto const& text : bench::split_list(s.instance_urls)) {
    auto parsed = bench::parse_loopback_url(text);
    if (!parsed.url) {
      std::cerr << "sigstream-bench: --instance-urls " << parsed.error << "\n";
      return 2;
    }
  }

  // One system after the other, so that they never share the CPU. The
  // sigstream cluster is not ours: it stays up (idle) while the baseline runs.
  std::vector<bench::bench_results> measured;
  int code = 0;
  for (auto const& system : bench::split_list(s.systems)) {
    bench::bench_results results;
    results.settings = s;
    results.version = SIGSTREAM_VERSION;
    results.started_at = bench::utc_now();
    results.machine = bench::machine_facts();
    int run_code = 0;
    if (system == "sigstream") {
      auto protocol = bench::make_sigstream_protocol();
      bench::system_target target{system, protocol.get(), s.url, std::nullopt, {}, true};
      results.system_description = "sigstream cluster at " + s.url;
      run_code = bench::run(s, target, results);
    } else {
      std::cerr << "bench [socketio]: starting the baseline (" << s.baseline_instances
                << " Socket.IO instances, Redis, HAProxy in mode tcp)\n";
      bench::baseline_settings bs;
      bs.dir = s.baseline_dir;
      bs.instances = static_cast<int>(s.baseline_instances);
      std::string error;
      auto cluster = bench::baseline_cluster::start(bs, error);
      if (!cluster) {
        std::cerr << "sigstream-bench: cannot start the Socket.IO baseline: " << error << "\n";
        code = 1;
        continue;
      }
      auto protocol = bench::make_socketio_protocol();
      bench::system_target target{system, protocol.get(), cluster->url(), cluster->processes(),
                                  "started by the bench in a temporary directory", false};
      results.system_description = cluster->description();
      run_code = bench::run(s, target, results);
      cluster->stop(run_code != 0);
    }
    if (run_code != 0) {
      code = run_code;  // nothing was measured
      continue;
    }
    measured.push_back(std::move(results));
  }
  if (measured.empty()) return code;
  for (auto const& results : measured) std::cout << bench::render_text(results) << "\n";
  if (measured.size() > 1) std::cout << bench::render_side_by_side(measured);
  std::cout << std::flush;
  if (!s.json_path.empty()) {
    std::ofstream out(s.json_path, std::ios::trunc);
    // One system: its report, as before --systems. Several: all of them.
    if (measured.size() == 1) {
      out << bench::render_json(measured.front());
    } else {
      out << "{\"systems\":[";
      for (std::size_t i = 0; i < measured.size(); ++i) {
        std::string one = bench::render_json(measured[i]);
        while (!one.empty() && one.back() == '\n') one.pop_back();
        out << (i ? "," : "") << one;
      }
      out << "]}\n";
    }
    if (!out) {
      std::cerr << "sigstream-bench: cannot write " << s.json_path << "\n";
      return 1;
    }
  }
  return code;
}

}  // namespace sig::bench
