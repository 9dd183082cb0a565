#include "service/metrics.hpp"

#include <fmt/format.h>

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
  gauge("frames_sent_total", "WebSocket frames queued to clients.", frames_sent, "counter");
  gauge("client_errors_total", "Error replies sent to clients.", client_errors, "counter");
  gauge("room_syncs_from_cache_total", "Rooms whose membership came from the Redis cache.", room_syncs_from_cache, "counter");
  gauge("room_syncs_by_replay_total", "Rooms whose membership was replayed from the stream alone.", room_syncs_by_replay, "counter");
  gauge("replayed_events_total", "Events read back from the stream (replays and catch-ups).", replayed_events, "counter");
  gauge("gaps_detected_total", "Live feed gaps found (each triggers a catch-up).", gaps_detected, "counter");
  gauge("live_dropped_by_fault_injection_total", "Live messages dropped on purpose (--fault-drop-live-every).", live_dropped_by_fault_injection, "counter");
  gauge("catch_ups_total", "Catch-ups from the stream.", catch_ups, "counter");
  gauge("ignored_events_total", "Events that could not be decoded or changed nothing.", ignored_events, "counter");
  gauge("slow_consumers_total", "Connections closed because they did not read fast enough.", slow_consumers, "counter");
  gauge("expired_peers_total", "Peers of dead instances whose leave (reason expired) this instance recorded.",
        expired_peers, "counter");
  gauge("instances_alive", "Instances whose heartbeat this instance sees, itself included.", instances_alive, "gauge");
  return out;
}

}  // namespace sig::service
