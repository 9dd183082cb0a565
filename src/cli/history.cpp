// `sigstream history ROOM`: a room's events, read straight from JetStream.
// No instance needs to run. This is the first cut of the debugging tool:
// table and jsonl output, a sequence range and a limit.
#include <fmt/format.h>

#include <atomic>
#include <ctime>
#include <iostream>

#include "adapters/codec/event_codec.hpp"
#include "adapters/nats/event_log.hpp"
#include "cli/commands.hpp"
#include "cli/logging.hpp"
#include "cli/options.hpp"
#include "domain/room_name.hpp"
#include "protocol/messages.hpp"

namespace sig::cli {

namespace {

std::string rfc3339(std::int64_t ms) {
  std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &utc);
  return fmt::format("{}.{:03}Z", buf, ms % 1000);
}

// One JSON object per line; the field names are the documented jsonl format.
std::string jsonl_line(std::string const& room, domain::event const& e) {
  using protocol::json_quote;
  std::string out = fmt::format("{{\"seq\":{},\"time\":{},\"room\":{},\"instance\":{}", e.seq,
                                json_quote(rfc3339(e.time_ms)), json_quote(room), json_quote(e.instance));
  if (auto const* j = std::get_if<domain::peer_joined>(&e.body)) {
    out += fmt::format(",\"kind\":\"join\",\"peer\":{},\"meta\":{}", json_quote(j->peer), j->meta_json);
  } else if (auto const* l = std::get_if<domain::peer_left>(&e.body)) {
    out += fmt::format(",\"kind\":\"leave\",\"peer\":{},\"reason\":\"{}\"", json_quote(l->peer), domain::to_string(l->reason));
  } else {
    auto const& s = std::get<domain::signal_sent>(e.body);
    out += fmt::format(",\"kind\":\"signal\",\"from\":{}", json_quote(s.from));
    if (s.to) out += fmt::format(",\"to\":{}", json_quote(*s.to));
    out += fmt::format(",\"data\":{}", s.data_json);
  }
  return out + "}";
}

std::string table_line(domain::event const& e) {
  std::string when = rfc3339(e.time_ms);
  if (auto const* j = std::get_if<domain::peer_joined>(&e.body))
    return fmt::format("{:>8}  {}  join    {:<24} meta={} (via {})", e.seq, when, j->peer, j->meta_json, e.instance);
  if (auto const* l = std::get_if<domain::peer_left>(&e.body))
    return fmt::format("{:>8}  {}  leave   {:<24} reason={}", e.seq, when, l->peer, domain::to_string(l->reason));
  auto const& s = std::get<domain::signal_sent>(e.body);
  return fmt::format("{:>8}  {}  signal  {:<24} -> {:<24} {} bytes", e.seq, when, s.from, s.to ? *s.to : "(everyone)",
                     s.data_json.size());
}

}  // namespace

int history_command(int argc, char** argv) {
  std::string room, nats_url = "nats://127.0.0.1:4222", stream = "SIGSTREAM", prefix = "sigstream", format = "table";
  std::int64_t since = 1, limit = 0;
  options opts("history", "Print a room's events (joins, leaves, signals) in stream order, read from JetStream.");
  opts.add_positional("ROOM", &room, "The room's name, exactly as clients give it.", true);
  opts.add_string("nats-url", &nats_url, "NATS server holding the stream.");
  opts.add_string("stream", &stream, "The stream sigstream instances write to.");
  opts.add_string("subject-prefix", &prefix, "The instances' subject prefix.");
  opts.add_string("format", &format, "table (for people) or jsonl (one JSON object per event, for scripts).");
  opts.add_int("since", &since, "First stream sequence to print.");
  opts.add_int("limit", &limit, "Print at most this many events (0: all).");
  if (!opts.parse(argc, argv)) return 2;
  if (opts.help_requested()) {
    std::cout << opts.help_text();
    return 0;
  }
  if (format != "table" && format != "jsonl") {
    std::cerr << "sigstream history: --format must be table or jsonl\n";
    return 2;
  }
  if (!domain::is_valid_room_name(room)) {
    std::cerr << "sigstream history: not a room name (1-200 bytes of UTF-8)\n";
    return 2;
  }
  log_factory logs("history", "warn");
  nats::log_settings settings;
  settings.url = nats_url;
  settings.stream = stream;
  settings.subject_prefix = prefix;
  settings.create_stream = false;
  settings.connect_attempts = 3;
  nats::event_log log(settings, logs.make("nats"));
  std::atomic<bool> stop{false};
  if (!log.start(stop)) {
    std::cerr << "sigstream history: cannot read stream " << stream << " at " << nats_url << "\n";
    return 1;
  }
  std::string token = domain::room_token(room);
  std::string filter = log.subjects(token).events;
  auto head = log.last_seq(filter);
  if (!head) return 1;
  auto messages = log.read(filter, static_cast<std::uint64_t>(std::max<std::int64_t>(since, 1)), *head);
  if (!messages) return 1;
  std::int64_t printed = 0;
  for (auto const& stored : *messages) {
    if (limit > 0 && printed >= limit) break;
    auto decoded = codec::decode_event(stored.payload, stored.seq);
    if (!decoded) {
      std::cerr << "seq " << stored.seq << ": an event this version cannot read\n";
      continue;
    }
    std::cout << (format == "jsonl" ? jsonl_line(decoded->room, decoded->event) : table_line(decoded->event)) << "\n";
    ++printed;
  }
  if (format == "table") std::cerr << printed << " events\n";
  return 0;
}

}  // namespace sig::cli
