#include "service/metrics.hpp"

#include <fmt/format.h>

#include "protocol/error_code.hpp"

namespace sig::service {

void latency_histogram::observe(std::chrono::microseconds elapsed) {
  auto us = elapsed.count() < 0 ? 0 : elapsed.count();  // clocks of different hosts
  double seconds = static_cast<double>(us) / 1e6;
  std::size_t b = 0;
  while (b < bounds_seconds.size() && seconds > bounds_seconds[b]) ++b;
  ++buckets[b];
  sum_us += static_cast<std::uint64_t>(us);
}

void latency_histogram::render(std::string& out, char const* name, char const* help) const {
  fmt::format_to(std::back_inserter(out), "# HELP sigstream_{} {}\n# TYPE sigstream_{} histogram\n", name, help, name);
  std::uint64_t cumulative = 0;
  for (std::size_t b = 0; b < bounds_seconds.size(); ++b) {
    cumulative += buckets[b].load();
    fmt::format_to(std::back_inserter(out), "sigstream_{}_bucket{{le=\"{}\"}} {}\n", name, bounds_seconds[b], cumulative);
  }
  cumulative += buckets.back().load();
  fmt::format_to(std::back_inserter(out), "sigstream_{}_bucket{{le=\"+Inf\"}} {}\nsigstream_{}_sum {}\nsigstream_{}_count {}\n",
                 name, cumulative, name, static_cast<double>(sum_us.load()) / 1e6, name, cumulative);
}

std::string metrics::prometheus_text(std::string const& instance_id, std::string const& version) const {
  std::string out;
  auto family = [&](char const* name, char const* help, char const* type) {
    fmt::format_to(std::back_inserter(out), "# HELP sigstream_{} {}\n# TYPE sigstream_{} {}\n", name, help, name, type);
  };
  auto single = [&](char const* name, char const* help, auto const& value, char const* type) {
    family(name, help, type);
    fmt::format_to(std::back_inserter(out), "sigstream_{} {}\n", name, value.load());
  };
  // One family, one series per value of `label`.
  auto labelled = [&](char const* name, char const* help, char const* label,
                      std::initializer_list<std::pair<char const*, std::uint64_t>> series) {
    family(name, help, "counter");
    for (auto const& [value, count] : series)
      fmt::format_to(std::back_inserter(out), "sigstream_{}{{{}=\"{}\"}} {}\n", name, label, value, count);
  };

  family("build_info", "The instance's id (--instance-id) and version; always 1.", "gauge");
  fmt::format_to(std::back_inserter(out), "sigstream_build_info{{instance_id=\"{}\",version=\"{}\"}} 1\n", instance_id,
                 version);

  single("connections", "Open WebSocket connections.", connections, "gauge");
  single("joined_peers", "Peers joined to a room through this instance.", joined_peers, "gauge");
  single("active_rooms", "Rooms this instance follows.", active_rooms, "gauge");
  single("detached_peers", "Peers whose connection dropped, kept for the resume grace period.", detached_peers, "gauge");
  single("instances_alive", "Instances whose heartbeat this instance sees, itself included.", instances_alive, "gauge");
  single("stream_replicas", "Replicas of the event stream, as last read (0: not read yet).", stream_replicas, "gauge");
  single("nats_connected", "1 while the NATS connection is up and the stream usable.", nats_connected, "gauge");
  single("redis_connected", "1 if Redis answered its last command, 0 if not, -1 without Redis.", redis_connected, "gauge");
  single("appends_in_flight", "Appends waiting for their acknowledgement from JetStream.", appends_in_flight, "gauge");

  single("connections_total", "WebSocket connections accepted.", connections_total, "counter");
  single("frames_sent_total", "WebSocket frames queued to clients.", frames_sent, "counter");
  single("slow_consumers_total", "Connections closed because they did not read fast enough.", slow_consumers, "counter");
  single("refused_upgrades_total", "WebSocket upgrades refused (origin not allowed, or --max-connections reached).",
         refused_upgrades, "counter");
  single("policy_closes_total", "Connections closed with 1008: over a limit and going on, or never joined in time.",
         abusive_closes, "counter");
  labelled("rate_limited_total", "Requests refused by a rate limit: signals per connection, joins per address.",
           "request", {{"signal", rate_limited.load()}, {"join", joins_rate_limited.load()}});

  static constexpr char const* kinds[] = {"join", "leave", "signal", "resume"};
  static_assert(std::size(kinds) == event_kinds);
  auto by_kind = [&](char const* name, char const* help, auto const& values) {
    family(name, help, "counter");
    for (std::size_t k = 0; k < event_kinds; ++k)
      fmt::format_to(std::back_inserter(out), "sigstream_{}{{kind=\"{}\"}} {}\n", name, kinds[k], values[k].load());
  };
  by_kind("events_appended_total",
          "Events rooms on this instance appended to the stream, by kind (a retry is not counted again; expiry leaves "
          "are in peers_expired_total).",
          appended_by_kind);
  by_kind("events_delivered_total", "Event frames queued to local peers, by kind.", delivered_by_kind);
  single("append_failures_total", "Appends that failed (the client got unavailable).", append_failures, "counter");
  single("appends_refused_for_load_total",
         "Joins and signals refused at once because --max-appends-in-flight were waiting (the client got unavailable).",
         appends_refused_for_load, "counter");
  single("append_retries_total", "Appends tried again after an error or a lost acknowledgement (with backoff).",
         append_retries, "counter");
  single("duplicate_requests_total",
         "Signals sent again with the same id and content and found stored already (acknowledged with the first copy's "
         "seq).",
         duplicate_requests, "counter");
  single("phantom_duplicates_total",
         "Events (signals, joins, leaves) NATS answered as stored already (a duplicate) where the stream does not "
         "have them; stored again under a new message id (nats-server 2.9 after a leader change or a lost quorum).",
         phantom_duplicates, "counter");

  family("client_errors_total", "Error replies sent to clients, by protocol code.", "counter");
  for (int code = 1; code <= 10; ++code)
    fmt::format_to(std::back_inserter(out), "sigstream_client_errors_total{{code=\"{}\"}} {}\n",
                   protocol::to_string(static_cast<protocol::error_code>(code)),
                   errors_by_code[static_cast<std::size_t>(code)].load());

  single("live_messages_received_total", "Room events received from NATS (only rooms with local peers).",
         live_messages_received, "counter");
  single("live_bytes_received_total", "Bytes of room events received from NATS.", live_bytes_received, "counter");
  labelled("room_syncs_total",
           "Room rebuilds (a room's first join on this instance), by where the membership came from: a Redis "
           "snapshot, or the stream alone.",
           "source", {{"cache", room_syncs_from_cache.load()}, {"stream", room_syncs_by_replay.load()}});
  single("replayed_events_total", "Events read back from the stream (rebuilds and catch-ups).", replayed_events,
         "counter");
  single("room_snapshots_total", "Room snapshots this instance wrote to the stream (every --snapshot-every events).",
         stream_snapshots, "counter");
  single("gaps_detected_total", "Live feed gaps found (each triggers a catch-up).", gaps_detected, "counter");
  single("catch_ups_total", "Catch-ups from the stream.", catch_ups, "counter");
  single("short_reads_total",
         "Rebuilds and catch-ups whose few events were read one at a time on the data connection (direct gets), "
         "without a worker.",
         short_reads, "counter");
  single("joins_before_rebuild_total",
         "Rooms' first joins here appended right behind the rebuild's reads instead of after them (only on a lone "
         "nats-server, which stores each publish in the order it came).",
         joins_before_rebuild, "counter");
  single("ignored_events_total", "Events that could not be decoded or changed nothing.", ignored_events, "counter");
  single("cache_repairs_total", "Redis snapshots rewritten because a rebuild found the cache stale, empty or ahead of the stream (a rebuild "
         "for a join leaves that to the join's own snapshot).",
         cache_repairs, "counter");

  single("resumes_total", "Peers that resumed here with their resume token.", resumes, "counter");
  single("resumes_refused_total", "Resume attempts refused (bad, altered or expired token, or the peer had left).",
         resumes_refused, "counter");
  single("resume_replayed_events_total", "Events replayed to resumed peers (what they missed while away).",
         resume_replayed_events, "counter");
  labelled("peers_expired_total",
           "Leaves (reason expired) recorded here: peers of a dead instance (instance_dead; duplicates stored by "
           "another survivor not counted), or peers that did not resume within the grace period (no_resume).",
           "reason", {{"instance_dead", expired_peers.load()}, {"no_resume", grace_expired_peers.load()}});

  delivery_latency.render(out, "delivery_latency_seconds",
                          "From an event's append (the appending instance's clock) to its fold here, live events.");
  join_latency.render(out, "join_latency_seconds", "From a join (or resume) request read to its joined reply queued, those that worked.");
  room_sync_latency.render(out, "room_sync_seconds",
                           "A room's rebuild here, from following it to ready for its first join (the holdings record, "
                           "its head, Redis, and the events read), those that worked.");

  if (fault_injection)
    single("live_dropped_by_fault_injection_total", "Live messages dropped on purpose (--fault-drop-live-every).",
           live_dropped_by_fault_injection, "counter");
  return out;
}

}  // namespace sig::service
