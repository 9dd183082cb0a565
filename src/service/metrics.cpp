#include "service/metrics.hpp"

#include <fmt/format.h>

#include "protocol/error_code.hpp"

namespace sig::service {

std::string metrics::prometheus_text(std::string const& instance_id) const {
  std::string out;
  auto gauge = [&](char const* name, char const* help, auto const& value, char const* type) {
    fmt::format_to(std::back_inserter(out), "# HELP sigstream_{} {}\n# TYPE sigstream_{} {}\nsigstream_{}{{instance=\"{}\"}} {}\n",
                   name, help, name, type, name, instance_id, value.load());
  };
  gauge("connections", "Open WebSocket connections.", connections, "gauge");
  gauge("joined_peers", "Peers joined to a room through this instance.", joined_peers, "gauge");
  gauge("active_rooms", "Rooms this instance follows.", active_rooms, "gauge");
  gauge("connections_total", "WebSocket connections accepted.", connections_total, "counter");
  gauge("live_messages_received_total", "Room events received from NATS (only rooms with local peers).", live_messages_received, "counter");
  gauge("live_bytes_received_total", "Bytes of room events received from NATS.", live_bytes_received, "counter");
  gauge("events_appended_total", "Events this instance appended to the stream.", events_appended, "counter");
  gauge("append_failures_total", "Appends that failed (the client got unavailable).", append_failures, "counter");
  gauge("appends_in_flight", "Appends waiting for their acknowledgement from JetStream.", appends_in_flight, "gauge");
  gauge("appends_refused_for_load_total",
        "Joins and signals refused at once because --max-appends-in-flight were waiting (the client got unavailable).",
        appends_refused_for_load, "counter");
  gauge("append_retries_total", "Appends tried again after an error or a lost acknowledgement (with backoff).",
        append_retries, "counter");
  gauge("duplicate_requests_total",
        "Signals sent again with the same id and content and found stored already (acknowledged with the first copy's seq).",
        duplicate_requests, "counter");
  gauge("frames_sent_total", "WebSocket frames queued to clients.", frames_sent, "counter");
  gauge("client_errors_total", "Error replies sent to clients.", client_errors, "counter");
  gauge("room_syncs_from_cache_total", "Rooms whose membership came from the Redis cache.", room_syncs_from_cache, "counter");
  gauge("room_syncs_by_replay_total", "Rooms whose membership was replayed from the stream alone.", room_syncs_by_replay, "counter");
  gauge("replayed_events_total", "Events read back from the stream (replays and catch-ups).", replayed_events, "counter");
  gauge("room_snapshots_total", "Room snapshots this instance wrote to the stream (every --snapshot-every events of a room).",
        stream_snapshots, "counter");
  gauge("gaps_detected_total", "Live feed gaps found (each triggers a catch-up).", gaps_detected, "counter");
  gauge("live_dropped_by_fault_injection_total", "Live messages dropped on purpose (--fault-drop-live-every).", live_dropped_by_fault_injection, "counter");
  gauge("catch_ups_total", "Catch-ups from the stream.", catch_ups, "counter");
  gauge("ignored_events_total", "Events that could not be decoded or changed nothing.", ignored_events, "counter");
  gauge("slow_consumers_total", "Connections closed because they did not read fast enough.", slow_consumers, "counter");
  gauge("refused_upgrades_total", "WebSocket upgrades refused (origin not allowed, or --max-connections reached).",
        refused_upgrades, "counter");
  gauge("rate_limited_total", "Signals refused by the per-connection rate limit.", rate_limited, "counter");
  gauge("joins_rate_limited_total", "Joins refused by the per-address join rate limit.", joins_rate_limited, "counter");
  gauge("policy_closes_total", "Connections closed with 1008: over a limit and going on, or never joined in time.",
        abusive_closes, "counter");
  gauge("expired_peers_total", "Peers of dead instances whose leave (reason expired) this instance recorded.",
        expired_peers, "counter");
  gauge("instances_alive", "Instances whose heartbeat this instance sees, itself included.", instances_alive, "gauge");
  gauge("cache_repairs_total", "Redis snapshots rewritten because the cache was stale, empty or ahead of the stream.",
        cache_repairs, "counter");
  gauge("nats_connected", "1 while the NATS connection is up and the stream usable.", nats_connected, "gauge");
  gauge("redis_connected", "1 if Redis answered its last command, 0 if not, -1 without Redis.", redis_connected, "gauge");

  gauge("detached_peers", "Peers whose connection dropped, kept for the resume grace period.", detached_peers, "gauge");
  gauge("resumes_total", "Peers that resumed here with their resume token.", resumes, "counter");
  gauge("resumes_refused_total", "Resume attempts refused (bad, altered or expired token, or the peer had left).",
        resumes_refused, "counter");
  gauge("resume_replayed_events_total", "Events replayed to resumed peers (what they missed while away).",
        resume_replayed_events, "counter");
  gauge("grace_expired_peers_total", "Peers that did not resume within the grace period (left, reason expired).",
        grace_expired_peers, "counter");

  static constexpr char const* kinds[] = {"join", "leave", "signal", "resume"};
  static_assert(std::size(kinds) == event_kinds);
  auto by_kind = [&](char const* name, char const* help, auto const& values) {
    fmt::format_to(std::back_inserter(out), "# HELP sigstream_{} {}\n# TYPE sigstream_{} counter\n", name, help, name);
    for (std::size_t k = 0; k < event_kinds; ++k)
      fmt::format_to(std::back_inserter(out), "sigstream_{}{{instance=\"{}\",kind=\"{}\"}} {}\n", name, instance_id, kinds[k],
                     values[k].load());
  };
  by_kind("events_appended_by_kind_total", "Events this instance appended, by kind.", appended_by_kind);
  by_kind("events_delivered_by_kind_total", "Event frames queued to local peers, by kind.", delivered_by_kind);

  fmt::format_to(std::back_inserter(out), "# HELP sigstream_client_errors_by_code_total Error replies by protocol code.\n"
                                          "# TYPE sigstream_client_errors_by_code_total counter\n");
  for (int code = 1; code <= 10; ++code)
    fmt::format_to(std::back_inserter(out), "sigstream_client_errors_by_code_total{{instance=\"{}\",code=\"{}\"}} {}\n",
                   instance_id, protocol::to_string(static_cast<protocol::error_code>(code)), errors_by_code[static_cast<std::size_t>(code)].load());

  fmt::format_to(std::back_inserter(out),
                 "# HELP sigstream_delivery_latency_ms From append (the appending instance's clock) to fold here, live events.\n"
                 "# TYPE sigstream_delivery_latency_ms histogram\n");
  std::uint64_t cumulative = 0;
  for (std::size_t b = 0; b < latency_bounds_ms.size(); ++b) {
    cumulative += latency_buckets[b].load();
    fmt::format_to(std::back_inserter(out), "sigstream_delivery_latency_ms_bucket{{instance=\"{}\",le=\"{}\"}} {}\n", instance_id,
                   latency_bounds_ms[b], cumulative);
  }
  cumulative += latency_buckets.back().load();
  fmt::format_to(std::back_inserter(out), "sigstream_delivery_latency_ms_bucket{{instance=\"{}\",le=\"+Inf\"}} {}\n"
                                          "sigstream_delivery_latency_ms_sum{{instance=\"{}\"}} {}\n"
                                          "sigstream_delivery_latency_ms_count{{instance=\"{}\"}} {}\n",
                 instance_id, cumulative, instance_id, latency_sum_ms.load(), instance_id, cumulative);
  return out;
}

void metrics::observe_latency(std::int64_t ms) {
  if (ms < 0) ms = 0;  // clocks of different hosts
  std::size_t b = 0;
  while (b < latency_bounds_ms.size() && ms > latency_bounds_ms[b]) ++b;
  ++latency_buckets[b];
  latency_sum_ms += static_cast<std::uint64_t>(ms);
}

}  // namespace sig::service
