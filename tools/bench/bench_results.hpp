#pragma once
// Everything `sigstream-bench` measured, as plain data: the runner fills it,
// the report renders it as text and JSON.
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "bench/bench_stats.hpp"

namespace sig::bench {

struct bench_settings {
  std::string url = "ws://127.0.0.1:8080/ws";
  std::string instance_urls;
  std::string placement = "haproxy";
  std::string phases = "memory,join,signal,isolation";
  std::int64_t rooms = 100;
  std::int64_t room_size = 4;
  std::string rates = "1000,5000,10000,20000";
  std::chrono::milliseconds duration{10'000};
  std::int64_t max_rate = 50'000;
  std::int64_t rate_step = 5'000;
  std::int64_t search_steps = 2;
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
  std::string kind;  // "fixed", "search" or "isolation"
  std::uint64_t id = 0;
  double rate = 0;
  double seconds = 0;  // time the pacer actually ran
  std::uint64_t target = 0, sent = 0;
  std::uint64_t received = 0;  // within the step and its drain: these give the latency figures
  std::uint64_t late = 0;      // arrived after the drain, before the run ended
  std::uint64_t lost = 0;      // never arrived: sent - received - late
  std::uint64_t errors = 0, queue_full = 0;
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

struct bench_results {
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
  std::vector<std::string> notes;
};

std::string render_text(bench_results const& results);
std::string render_json(bench_results const& results);

}  // namespace sig::bench
