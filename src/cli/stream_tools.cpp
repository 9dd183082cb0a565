// The tools that read the cluster's NATS directly, with no instance running:
// `sigstream history ROOM`, `state ROOM` and `rooms` (through
// service/room_history, the same code as the admin API), and `cluster`
// (the instances' heartbeats).
#include <fmt/format.h>
#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <ctime>
#include <iostream>
#include <thread>

#include "adapters/nats/event_log.hpp"
#include "auth/url_credentials.hpp"
#include "cli/commands.hpp"
#include "cli/nats_security_options.hpp"
#include "cli/logging.hpp"
#include "cli/options.hpp"
#include "domain/room_name.hpp"
#include "history/formats.hpp"
#include "history/redact.hpp"
#include "history/selection.hpp"
#include "history/time_point.hpp"
#include "protocol/json.hpp"
#include "protocol/messages.hpp"
#include "service/history/room_history.hpp"

namespace sig::cli {

namespace {

// Exit codes: 0 done, 1 the stream could not be read, 2 bad usage or nothing to show.
constexpr int exit_ok = 0, exit_unreachable = 1, exit_usage = 2;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// SIGINT/SIGTERM set `stop` instead of killing the process, so a --follow
// or a long read ends cleanly. Construct before any other thread starts:
// threads inherit the blocked mask, and only the watcher takes the signals.
class interrupt_watch {
 public:
  interrupt_watch() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    thread_ = std::thread([this] {
      timespec slice{0, 200'000'000};
      while (!done_) {
        if (sigtimedwait(&set_, nullptr, &slice) > 0) stop = true;
      }
    });
  }
  ~interrupt_watch() {
    done_ = true;
    // Wakes the watcher now rather than at the end of its 200 ms slice, so a
    // command exits as soon as its work is done.
    pthread_kill(thread_.native_handle(), SIGTERM);
    thread_.join();
  }
  std::atomic<bool> stop{false};

 private:
  sigset_t set_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

// What every history tool needs to reach the stream.
struct stream_options {
  std::string nats_url = "nats://127.0.0.1:4222", stream = "SIGSTREAM", prefix = "sigstream";
  nats::nats_security security;

  // For messages and reports: the URL without any credentials in it.
  std::string shown_url() const { return auth::url_without_credentials(nats_url); }

  void declare(options& opts) {
    opts.add_string("nats-url", &nats_url, "NATS server holding the stream (--nats is the same).");
    declare_nats_security(opts, &security);
    opts.add_string("stream", &stream, "The stream sigstream instances write to.");
    opts.add_string("subject-prefix", &prefix, "The instances' subject prefix.");
  }
};

// `--nats URL` is accepted as a short form of `--nats-url URL`.
std::vector<char*> with_aliases(int argc, char** argv, std::vector<std::string>& storage) {
  storage.reserve(static_cast<std::size_t>(argc));
  for (int i = 0; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--nats") storage.emplace_back("--nats-url");
    else if (arg.starts_with("--nats=")) storage.push_back("--nats-url=" + std::string(arg.substr(7)));
    else storage.emplace_back(arg);
  }
  std::vector<char*> out;
  for (auto& s : storage) out.push_back(s.data());
  return out;
}

// Parses the command line; returns an exit code when the command is over
// (help printed, or a usage error), nullopt to go on.
std::optional<int> parse(options& opts, int argc, char** argv) {
  std::vector<std::string> storage;
  auto args = with_aliases(argc, argv, storage);
  return opts.parse_or_exit(static_cast<int>(args.size()), args.data());
}

// Connects to the stream; on failure says why, naming the URL.
std::unique_ptr<nats::event_log> open_stream(char const* command, stream_options const& s, log_factory& logs,
                                             std::atomic<bool> const& stop) {
  nats::log_settings settings;
  settings.url = s.nats_url;
  settings.security = s.security;
  settings.stream = s.stream;
  settings.subject_prefix = s.prefix;
  settings.create_stream = false;
  settings.connect_attempts = 3;
  settings.client_name = fmt::format("sigstream {}", command);
  auto log = std::make_unique<nats::event_log>(settings, logs.make("nats"));
  if (!log->start(stop)) {
    std::cerr << fmt::format("sigstream {}: cannot read stream {} at {} (is NATS running there, and has an instance "
                             "created the stream? Another NATS: --nats-url or SIGSTREAM_NATS_URL; another stream: "
                             "--stream or SIGSTREAM_STREAM)\n",
                             command, s.stream, s.shown_url());
    return nullptr;
  }
  return log;
}

// Progress on stderr, only when it is a terminal: long reads say how far they are.
struct terminal_progress {
  bool on = isatty(STDERR_FILENO) == 1;
  bool shown = false;

  service::read_progress callback(std::string what) {
    if (!on) return {};
    return [this, what = std::move(what)](std::uint64_t read, std::uint64_t seq, std::uint64_t head) {
      shown = true;
      if (head > 0)
        std::cerr << fmt::format("\r\033[K{}: {} events read, at seq {} of {} ({}%)", what, read, seq, head,
                                 head == 0 ? 100 : seq * 100 / head)
                  << std::flush;
      else
        std::cerr << fmt::format("\r\033[K{}: {} events read, at seq {}", what, read, seq) << std::flush;
    };
  }
  void clear() {
    if (shown) std::cerr << "\r\033[K" << std::flush;
    shown = false;
  }
};

std::optional<history::point> point_option(char const* command, char const* name, std::string const& text,
                                           int& exit_code) {
  if (text.empty()) return std::nullopt;
  std::string error;
  auto p = history::parse_point(text, now_ms(), &error);
  if (!p) {
    std::cerr << fmt::format("sigstream {}: --{}: {}\n", command, name, error);
    exit_code = exit_usage;
  }
  return p;
}

// The small tools print a table, or one machine-readable format.
bool format_is(char const* command, std::string const& format, char const* machine_format) {
  if (format == "table" || format == machine_format) return true;
  std::cerr << fmt::format("sigstream {}: --format: \"{}\" is not a format (table, {})\n", command, format, machine_format);
  return false;
}

bool check_room(char const* command, std::string const& room) {
  if (domain::is_valid_room_name(room)) return true;
  std::cerr << fmt::format("sigstream {}: not a room name: a room name is 1 to 200 bytes of UTF-8\n", command);
  return false;
}

int no_history(char const* command, std::string const& room, stream_options const& s) {
  std::cerr << fmt::format("sigstream {}: room {} has no history in stream {} at {}\n", command,
                           protocol::json_quote(room), s.stream, s.shown_url());
  return exit_usage;
}

}  // namespace

int history_command(int argc, char** argv) {
  // Output goes through std::cout only: its own buffering, without keeping
  // step with C stdio, is measurably faster on long histories.
  std::ios::sync_with_stdio(false);
  stream_options s;
  std::string room, since, until, peer, as_peer, kinds = "join,leave,signal,resume", format_name = "table";
  std::int64_t limit = 0;
  // Addresses are masked unless asked: an html or jsonl file is made to be shared.
  bool follow = false, redact = true, no_redact = false;
  options opts("history",
               "Print a room's events in stream order (joins, leaves and signals, with a one-line summary of each "
               "SDP offer, answer and ICE candidate), read straight from JetStream.");
  opts.add_positional("ROOM", &room, "The room's name, exactly as clients give it.", true);
  s.declare(opts);
  opts.add_string("since", &since, "Start here: a sequence (1234), an RFC 3339 time, or a duration back from now (10m).");
  opts.add_string("until", &until, "End here (inclusive); same forms as --since.");
  opts.add_string("peer", &peer, "Only events of this peer: its join and leave, signals it sent or received.");
  opts.add_string("as", &as_peer, "Show what this peer was sent, in order (jsonl: the exact frames).");
  opts.add_string("kind", &kinds, "Kinds of events to show, comma-separated: join, leave, signal, resume.");
  opts.add_flag("follow", &follow, "After the history, keep printing new events until interrupted.");
  opts.add_int("limit", &limit, "Print at most this many events (0: all).");
  opts.add_string("format", &format_name, "table, jsonl (one JSON object per event), mermaid or html.");
  opts.add_flag("redact", &redact, "Mask IP addresses in payloads (SDP, ICE candidates) and meta (the default).");
  opts.add_flag("no-redact", &no_redact, "Show IP addresses as stored (same as --redact=false).");
  opts.command_line_only({"since", "until", "peer", "as", "kind", "follow", "limit", "format", "redact", "no-redact"});
  if (auto done = parse(opts, argc, argv)) return *done;
  if (no_redact) redact = false;

  int bad = exit_ok;
  std::string error;
  auto fmt_kind = history::parse_format(format_name, &error);
  if (!fmt_kind) {
    std::cerr << "sigstream history: --format: " << error << "\n";
    return exit_usage;
  }
  auto kind_set = history::parse_kinds(kinds, &error);
  if (!kind_set) {
    std::cerr << "sigstream history: --kind: " << error << "\n";
    return exit_usage;
  }
  if (limit < 0) {
    std::cerr << "sigstream history: --limit: must be 0 (all) or more, not " << limit << "\n";
    return exit_usage;
  }
  if (follow && (*fmt_kind == history::format::mermaid || *fmt_kind == history::format::html)) {
    std::cerr << "sigstream history: --follow works with --format table or jsonl (a diagram is written at the end)\n";
    return exit_usage;
  }
  service::history_query q;
  q.room = room;
  q.selection.since = point_option("history", "since", since, bad);
  q.selection.until = point_option("history", "until", until, bad);
  q.selection.kind = *kind_set;
  q.selection.peer = peer;
  q.selection.as_peer = as_peer;
  q.limit = static_cast<std::uint64_t>(limit);
  q.follow = follow;
  q.needs_state = *fmt_kind == history::format::mermaid;  // broadcast arrows go to the members of the moment
  if (bad != exit_ok) return bad;
  if (!check_room("history", room)) return exit_usage;

  interrupt_watch interrupt;
  log_factory logs("history", "warn");
  auto log = open_stream("history", s, logs, interrupt.stop);
  if (!log) return exit_unreachable;

  history::format_options fo;
  fo.room = room;
  fo.redact = redact;
  fo.as_peer = as_peer;
  fo.flush_each = follow;
  fo.subtitle = fmt::format("stream {} at {} · read {}{}{}", s.stream, s.shown_url(), history::rfc3339(now_ms()),
                            as_peer.empty() ? "" : " · as " + as_peer, redact ? " · addresses redacted" : "");
  auto writer = history::make_writer(*fmt_kind, std::cout, fo);
  terminal_progress progress;
  auto stats = service::read_history(*log, q, *writer, interrupt.stop, progress.callback("reading " + room));
  progress.clear();
  if (stats.outcome == service::read_outcome::no_history) return no_history("history", room, s);
  writer->finish();
  if (stats.unreadable > 0)
    std::cerr << fmt::format("{} stored events could not be decoded (newer schema or corrupt) and were skipped\n",
                             stats.unreadable);
  if (stats.outcome == service::read_outcome::failed) {
    std::cerr << fmt::format("sigstream history: reading stream {} at {} failed after {} events\n", s.stream,
                             s.shown_url(), stats.read);
    return exit_unreachable;
  }
  if (*fmt_kind == history::format::table)
    std::cerr << fmt::format("{} of {} events shown (peers by name and the first characters of their id; "
                             "--format jsonl has the ids whole)\n",
                             stats.shown, stats.read);
  return exit_ok;
}

int state_command(int argc, char** argv) {
  stream_options s;
  std::string room, at, format_name = "table";
  bool redact = true, no_redact = false;
  options opts("state",
               "Print a room's membership at a point of its history, by the same fold of events the instances use.");
  opts.add_positional("ROOM", &room, "The room's name, exactly as clients give it.", true);
  s.declare(opts);
  opts.add_string("at", &at, "The point: a sequence, an RFC 3339 time, or a duration back from now (default: now).");
  opts.add_string("format", &format_name, "table or json.");
  opts.add_flag("redact", &redact, "Mask IP addresses in meta (the default).");
  opts.add_flag("no-redact", &no_redact, "Show IP addresses as stored (same as --redact=false).");
  opts.command_line_only({"at", "format", "redact", "no-redact"});
  if (auto done = parse(opts, argc, argv)) return *done;
  if (no_redact) redact = false;
  int bad = exit_ok;
  auto point = point_option("state", "at", at, bad);
  if (bad != exit_ok) return bad;
  if (!format_is("state", format_name, "json")) return exit_usage;
  if (!check_room("state", room)) return exit_usage;

  interrupt_watch interrupt;
  log_factory logs("state", "warn");
  auto log = open_stream("state", s, logs, interrupt.stop);
  if (!log) return exit_unreachable;
  terminal_progress progress;
  auto result = service::read_state(*log, room, point, interrupt.stop, progress.callback("reading " + room));
  progress.clear();
  if (result.outcome == service::read_outcome::no_history) return no_history("state", room, s);
  if (result.outcome != service::read_outcome::done) return exit_unreachable;

  auto const& st = result.state;
  if (format_name == "json") {
    std::cout << service::state_json(room, result, redact) << "\n";
    return exit_ok;
  }
  std::cout << fmt::format("room {} after seq {} ({} events{}): {} member{}\n", protocol::json_quote(room), st.last_seq,
                           result.events,
                           result.last_time_ms > 0 ? ", last at " + history::rfc3339(result.last_time_ms) : "",
                           st.members.size(), st.members.size() == 1 ? "" : "s");
  if (!st.members.empty())
    std::cout << fmt::format("{:<24}  {:<10}  {:>10}  {}\n", "PEER", "INSTANCE", "JOIN SEQ", "META");
  for (auto const& m : st.members)
    std::cout << fmt::format("{:<24}  {:<10}  {:>10}  {}\n", m.peer, m.instance, m.join_seq,
                             m.meta_json.empty() ? "{}"
                             : redact          ? history::redact_addresses(m.meta_json)
                                               : m.meta_json);
  return exit_ok;
}

int rooms_command(int argc, char** argv) {
  stream_options s;
  bool active = false;
  std::string format_name = "table";
  options opts("rooms",
               "List the rooms that have history, newest activity first, with their member and event counts. Reads "
               "the whole stream (with progress on a terminal).");
  s.declare(opts);
  opts.add_flag("active", &active, "Only rooms that have members now.");
  opts.add_string("format", &format_name, "table or jsonl.");
  opts.command_line_only({"active", "format"});
  if (auto done = parse(opts, argc, argv)) return *done;
  if (!format_is("rooms", format_name, "jsonl")) return exit_usage;
  interrupt_watch interrupt;
  log_factory logs("rooms", "warn");
  auto log = open_stream("rooms", s, logs, interrupt.stop);
  if (!log) return exit_unreachable;
  service::room_index index;
  terminal_progress progress;
  auto rooms = index.rooms(*log, interrupt.stop, progress.callback("reading stream " + s.stream));
  progress.clear();
  if (!rooms) return exit_unreachable;
  if (format_name == "table") std::cout << fmt::format("{:>7}  {:>8}  {:>10}  {:<24}  {}\n", "MEMBERS", "EVENTS", "LAST SEQ", "LAST ACTIVITY", "ROOM");
  std::size_t shown = 0;
  for (auto const& r : *rooms) {
    if (active && r.members == 0) continue;
    ++shown;
    if (format_name == "jsonl")
      std::cout << service::overview_json(r) << "\n";
    else
      std::cout << fmt::format("{:>7}  {:>8}  {:>10}  {:<24}  {}\n", r.members, r.events, r.last_seq,
                               history::rfc3339(r.last_time_ms), protocol::json_quote(r.room));
  }
  if (format_name == "table") std::cerr << fmt::format("{} room{}\n", shown, shown == 1 ? "" : "s");
  return exit_ok;
}

}  // namespace sig::cli

namespace sig::cli {

int cluster_command(int argc, char** argv) {
  stream_options s;
  std::string format_name = "table";
  options opts("cluster",
               "List the instances that share the stream, from their heartbeats: id, version, time up, peers and "
               "rooms. A killed instance stays listed until its entry expires (a minute or so).");
  s.declare(opts);
  opts.add_string("format", &format_name, "table or jsonl.");
  opts.command_line_only({"format"});
  if (auto done = parse(opts, argc, argv)) return *done;
  if (!format_is("cluster", format_name, "jsonl")) return exit_usage;
  interrupt_watch interrupt;
  log_factory logs("cluster", "warn");
  auto log = open_stream("cluster", s, logs, interrupt.stop);
  if (!log) return exit_unreachable;
  // The bucket's TTL only matters when it is created, which an instance does.
  auto beats = log->heartbeats();
  if (!beats) return exit_unreachable;
  if (format_name == "table")
    std::cout << fmt::format("{:<20}  {:<8}  {:>10}  {:>6}  {:>6}  {:>6}\n", "INSTANCE", "VERSION", "UP", "CONNS", "PEERS",
                             "ROOMS");
  for (auto const& b : *beats) {
    if (format_name == "jsonl") {
      std::cout << b.value << "\n";
      continue;
    }
    auto doc = protocol::json::parse(b.value, 8);
    auto field = [&](char const* name) -> std::string {
      auto const* v = doc.ok() ? doc.object.find(name) : nullptr;
      return v == nullptr ? "?" : v->kind == protocol::json::kind::string ? v->text : std::string(v->raw);
    };
    std::string up = "?";
    if (auto started = field("started"); started != "?") {
      auto seconds = (now_ms() - std::stoll(started)) / 1000;
      up = seconds < 120 ? fmt::format("{}s", seconds) : seconds < 7200 ? fmt::format("{}m", seconds / 60)
                                                                           : fmt::format("{}h", seconds / 3600);
    }
    std::cout << fmt::format("{:<20}  {:<8}  {:>10}  {:>6}  {:>6}  {:>6}\n", b.instance, field("version"), up,
                             field("connections"), field("peers"), field("rooms"));
  }
  if (format_name == "table") {
    std::cerr << fmt::format("{} instance{} with a heartbeat (an instance killed a moment ago is listed until its "
                             "entry expires)\n", beats->size(), beats->size() == 1 ? "" : "s");
    // Where NATS keeps the stream: in a JetStream cluster, which node leads
    // it and whether each other copy is current.
    if (auto where = log->placement()) {
      if (where->cluster.empty()) {
        std::cout << fmt::format("\nstream {}: one NATS server, {} replica{}\n", s.stream, where->replicas,
                                 where->replicas == 1 ? "" : "s");
      } else {
        std::cout << fmt::format("\nstream {}: NATS cluster {}, {} replicas, leader {}\n", s.stream, where->cluster,
                                 where->replicas, where->leader.empty() ? "(none: electing, or no quorum)" : where->leader);
        std::cout << fmt::format("{:<20}  {}\n", "REPLICA", "STATE");
        for (auto const& r : where->followers)
          std::cout << fmt::format("{:<20}  {}\n", r.name,
                                   r.offline ? "offline" : r.current ? "current"
                                                                     : fmt::format("lagging ({} behind)", r.lag));
      }
    }
  }
  return exit_ok;
}

}  // namespace sig::cli
