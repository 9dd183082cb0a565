#pragma once
// Everything `sigstream-bench` measured, as plain data: the runner fills one
// bench_results per system it drove, the report renders them as text (side
// by side when there are several) and JSON.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bench/bench_stats.hpp"

namespace sig::bench {

struct bench_settings {
  std::string systems = "sigstream";  // run in this order: sigstream (the cluster at --url), socketio (started here)
  std::string url = "ws://127.0.0.1:8080/ws";
  std::string instance_urls;
  std::string placement = "haproxy";
  // spread: each room's peers on as many instances as there are (the
  // benchmark's figures); together: all on one instance, so that one
  // instance follows each room: the upper bound of delivering a signal
  // only where its target is (docs/benchmarks.md).
  std::string room_spread = "spread";
  std::string phases = "memory,join,signal,isolation";
  std::int64_t rooms = 100;
  std::int64_t room_size = 4;
  std::string rates = "1000,5000,10000,20000";
  std::chrono::milliseconds duration{10'000};
  std::int64_t max_rate = 50'000;
  std::int64_t rate_step = 5'000;
  std::int64_t search_steps = 2;
  // A step passes when nothing is lost and its p99 is under this: the
  // issue's "highest rate with nothing lost" uses 50 ms.
  std::chrono::milliseconds lossless_p99{50};
  std::chrono::milliseconds drain{5'000};
  std::chrono::milliseconds settle{2'000};
  std::int64_t payload_bytes = 200;
  std::int64_t idle_peers = 2000;
  std::chrono::milliseconds idle_settle{3'000};
  std::chrono::milliseconds join_pace{2};
  std::chrono::milliseconds join_timeout{5'000};
  std::chrono::milliseconds connect_timeout{5'000};
  std::int64_t connect_window = 100;
  std::int64_t isolation_rooms = 30;
  std::int64_t isolation_rate = 2'000;
  std::chrono::milliseconds isolation_duration{5'000};
  std::int64_t client_threads = 1;
  bool signal_acks = true;  // signals carry a request id and are acknowledged
  bool overload = false;
  std::int64_t overload_rate = 0;  // 0: 3 x the highest lossless rate of the run
  std::chrono::milliseconds overload_duration{30'000};
  std::int64_t recovery_rate = 1000;
  std::chrono::milliseconds recovery_duration{10'000};
  std::int64_t baseline_instances = 2;
  std::string baseline_dir;  // server.mjs and haproxy.cfg of the Socket.IO baseline
  std::string pids;
  std::string pid_dir = ".run/pids";
  std::string json_path;
  std::string trace_path;
  std::string label;
};

struct process_info {
  std::string name, role, instance_id;
  int pid = 0;
};

struct placement_figures {
  std::string method;  // "haproxy" or "direct"
  std::uint64_t connections_opened = 0;
  std::uint64_t connections_failed = 0;
  std::uint64_t connections_used = 0;
  std::uint64_t rooms = 0;
  std::uint64_t rooms_fully_spread = 0;  // peers on min(room size, instances) distinct instances
  std::map<std::string, std::uint64_t> opened_per_instance;
  std::map<std::string, std::uint64_t> used_per_instance;
};

struct join_figures {
  std::string mode;  // "sequential" or "burst"
  std::uint64_t attempted = 0, joined = 0, failed = 0, timed_out = 0;
  double wall_seconds = 0;
  latency_summary all;
  latency_summary first_on_instance;  // the instance had to start following the room
  latency_summary instance_follows;   // the instance already followed the room
  std::map<std::string, std::uint64_t> errors;
  // What each server process spent from the first join sent to the last
  // answer, per join answered: where a burst's time goes, in every run.
  struct process_share {
    std::string name, role;
    double cpu_ms = 0, us_per_join = 0;
  };
  std::vector<process_share> cpu;
  double servers_us_per_join = 0, bench_us_per_join = 0;
};

struct process_cpu {
  std::string name, role;
  double cpu_seconds = 0;
  double us_per_signal = 0;
  double context_switches_per_signal = 0;  // all threads; a sign of per-message hand-offs
};

struct instance_traffic {
  std::string instance;
  std::uint64_t peers = 0;  // bench peers of this run's rooms on it
  double live_received = 0, live_expected = 0;
  double frames_sent = 0, frames_expected = 0;
  double events_appended = 0;
  // Trouble signs, also from /metrics: live-feed gaps, catch-ups from the
  // stream, events read back, clients closed as slow consumers.
  double gaps = 0, catch_ups = 0, replayed_events = 0, slow_consumers = 0;
};

struct rate_step {
  std::string kind;  // "fixed", "search", "overload", "recovery" or "isolation"
  std::uint64_t id = 0;
  double rate = 0;
  double seconds = 0;  // time the pacer actually ran
  std::uint64_t target = 0, sent = 0;
  std::uint64_t received = 0;  // within the step and its drain: these give the latency figures
  std::uint64_t late = 0;      // arrived after the drain, before the run ended
  std::uint64_t lost = 0;      // never arrived: sent - received - late
  std::uint64_t errors = 0, queue_full = 0;
  // From the signal ledger, once the run's last wait is over (ledger false:
  // not followed). Acknowledged and refused need --signal-acks.
  bool ledger = false;
  std::uint64_t acked = 0, refused = 0, delivered = 0;
  std::uint64_t lost_acknowledged = 0;       // acknowledged, never delivered: must be 0
  std::uint64_t refused_but_delivered = 0;   // must be 0
  // Answered "may still be delivered" (an append not confirmed in time),
  // and how many of those were delivered after all: allowed.
  std::uint64_t unconfirmed = 0, unconfirmed_delivered = 0;
  std::uint64_t unanswered_undelivered = 0;  // neither answered nor delivered (or never sent: queue_full)
  std::uint64_t duplicates = 0;              // delivered more than once
  std::vector<step_window> windows;          // recovery steps only
  std::uint64_t connections_lost = 0;
  double pacer_max_lag_ms = 0;
  double drain_ms = 0;
  latency_summary latency;
  bool pass = false;
  std::string verdict;
  std::vector<process_cpu> cpu;
  double servers_us_per_signal = 0;  // sum over watched server processes
  double bench_us_per_signal = 0;
  std::vector<instance_traffic> traffic;
  std::map<std::string, std::uint64_t> error_codes;
};

struct memory_row {
  std::string name, role, instance;
  std::uint64_t peers = 0;  // idle peers connected to it (instances only)
  std::uint64_t rss_before_kib = 0, rss_after_kib = 0;
  double bytes_per_peer = 0;
};

struct memory_figures {
  std::uint64_t peers_requested = 0, peers_connected = 0, peers_joined = 0;
  double settle_seconds = 0;
  std::vector<memory_row> rows;
  double instance_bytes_per_peer = 0;  // all instances' growth / all idle peers
  double worst_instance_bytes_per_peer = 0;
};

struct isolation_figures {
  std::vector<std::string> used_instances;
  std::vector<std::string> excluded_instances;
  placement_figures placement;
  std::optional<rate_step> step;
};

// The overload step (--overload): `rate` for --overload-duration, then at
// once --recovery-rate for --recovery-duration; both are among the steps.
struct overload_figures {
  double rate = 0;
  std::string rate_source;
  std::uint64_t overload_step = 0, recovery_step = 0;  // rate_step ids
  // The first second of the recovery from which on every second had its
  // signals delivered and p99 under recovered_p99_ms; nullopt: never within the step.
  std::optional<double> back_to_normal_seconds;
  // sigstream only (-1: not measured): peers the instances expired over both
  // steps (an instance taken for dead), and the fewest instances any
  // instance saw alive afterwards.
  double expired_peers = -1, fewest_instances_alive = -1;
  std::uint64_t instances = 0;
  // Instance counters gained over both steps, summed over the instances
  // (sigstream only; a counter this build of the instances lacks is left out).
  std::map<std::string, double> instance_counters;
  std::vector<std::string> processes_gone;  // watched server processes no longer running
  std::uint64_t connections_closed = 0;     // bench connections the servers closed
};
inline constexpr double recovered_p99_ms = 5.0;

struct bench_results {
  std::string system = "sigstream";  // as --systems names it
  std::string system_description;    // what runs, with versions
  std::string target_url;            // the load balancer's WebSocket URL
  bench_settings settings;
  std::string started_at;  // UTC, ISO 8601
  std::string version;
  std::map<std::string, std::string> machine;
  std::vector<process_info> processes;
  std::string process_source;
  std::map<std::string, std::string> instance_endpoints;  // id -> ws URL (for /metrics)
  std::uint64_t open_file_limit = 0;
  std::optional<memory_figures> memory;
  std::optional<placement_figures> placement;
  std::vector<join_figures> joins;
  std::vector<rate_step> steps;
  std::optional<double> max_lossless_rate;
  std::optional<double> first_failed_rate;
  std::optional<isolation_figures> isolation;
  std::optional<overload_figures> overload;
  std::vector<std::string> notes;
};

std::string render_text(bench_results const& results);
std::string render_json(bench_results const& results);
// Every system's figures in one table, a column per system, in run order.
std::string render_side_by_side(std::vector<bench_results> const& systems);
// A step of `results` by its id; nullptr if none.
rate_step const* find_step(bench_results const& results, std::uint64_t id);

}  // namespace sig::bench
