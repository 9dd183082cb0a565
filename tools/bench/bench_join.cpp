// `sigstream-bench join`: the latency of the first join of a room on a fresh
// instance, against the length of that room's history. A room with a
// million signals behind it must be joined as fast as a new one; this
// measures how far from that we are. It fills a stream of its own
// (SIGSTREAM-JOINBENCH by default, never the instances' one) with one room
// per history length, then for every length and repeat starts a fresh
// `sigstream serve` on that stream, waits for /readyz and times one join.
//
// The bench thread does the filling, spawning and waiting; one more thread
// runs the io_context of the WebSocket and HTTP clients, whose callbacks
// touch only a probe's mutex-guarded fields. nats.c's acknowledgement thread
// touches only `publish_window` and the fill's per-event sequence slots.
//
// Snapshots: instances that follow a room write its membership snapshot to
// the room's `.s` subject every --snapshot-every events (service/room/room.cpp).
// The fill involves no instance, so it writes them itself, exactly as such
// instances would have: the same fold, count, payload, subject and message
// id. `--snapshot-every 0` leaves the room without any (a stream filled by a
// version without snapshots): the worst case for the first rebuild.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "adapters/codec/event_codec.hpp"
#include "adapters/nats/event_log.hpp"
#include "bench/bench_client.hpp"
#include "bench/bench_common.hpp"
#include "bench/bench_system.hpp"
#include "bench/commands.hpp"
#include "cli/logging.hpp"
#include "cli/options.hpp"
#include "domain/room_name.hpp"
#include "domain/room_state.hpp"
#include "protocol/json.hpp"
#include "protocol/messages.hpp"

namespace sig::bench {

using cli::options;
using cli::log_factory;

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using steady = std::chrono::steady_clock;
using protocol::json_quote;

constexpr char method_text[] =
    "For each history length L, one room join-bench-L is filled straight into the bench's own stream (event_log "
    "appends of codec::encode_event, no instance involved): 2 peer_joined events (instance bench-fill) then L "
    "signals of ~100 B alternating between the 2 peers; each room's events are contiguous in the stream. While "
    "filling, "
    "the room's membership is folded (domain::evolve, with each event's acknowledged stream seq) and, when the room's "
    "event count reaches a multiple of --snapshot-every (0: never), its snapshot is stored as an instance that "
    "followed the room would store it: codec::encode_snapshot(state, seq, count) on <prefix>.room.<token>.s, "
    "Nats-Rollup: sub, msg id snap.<token>.<seq> (event_log::put_snapshot). For each "
    "length and repeat, a fresh `sigstream serve` is started on that stream (its own free loopback port, "
    "--log-level warn, no Redis unless --redis-url is given, so every first join rebuilds the room from the stream: "
    "its newest snapshot, then the events after it), /readyz is "
    "polled until 200 ('ready': spawn to 200), a WebSocket is opened to /ws and {type:join} is sent; 'join' is the "
    "time from sending it to receiving `joined`, whose peers must be exactly the 2 filled peers. The peer then "
    "leaves (waiting for its ack), the WebSocket is closed and the instance is stopped with SIGTERM. Each repeat "
    "appends a join and a leave to the room, so its history grows by 2 events per repeat (irrelevant next to L). "
    "Instances run with their default --snapshot-every (1000), so a rebuild that replays 1000 or more events leaves "
    "a snapshot: the first repeat of a length is reported apart from the later ones. After the leave's ack, the "
    "instance's /metrics give replayed_events (events read back from the stream) and room_snapshots (snapshots it "
    "wrote).";

struct settings {
  std::string nats_url = "nats://127.0.0.1:4222";
  std::string redis_url;  // empty: instances run without the presence cache
  std::string stream = "SIGSTREAM-JOINBENCH";
  std::string prefix = "sigjoinbench";
  std::string lengths = "0,1000,10000,100000,1000000";
  std::int64_t repeats = 5;
  std::string serve_bin = product_binary_beside_this_one();
  bool keep = false;
  std::string report;
  std::int64_t window = 4096;
  std::int64_t snapshot_every = 1000;  // 0: the fill writes no snapshots
  std::chrono::milliseconds ready_timeout{30'000};
  std::chrono::milliseconds join_timeout{300'000};
  std::chrono::milliseconds stop_timeout{10'000};
  std::chrono::milliseconds instance_timeout{3'600'000};
};

// redis://127.x.y.z or redis://localhost, with an optional :PORT and /DB.
bool is_loopback_redis_url(std::string_view url) {
  if (!url.starts_with("redis://")) return false;
  std::string_view rest = url.substr(8);
  std::string_view host = rest.substr(0, rest.find_first_of(":/"));
  if (host != "localhost") {
    boost::system::error_code ec;
    auto address = asio::ip::make_address_v4(std::string(host), ec);
    if (ec || !address.is_loopback()) return false;
  }
  rest.remove_prefix(host.size());
  if (rest.starts_with(":")) {
    rest.remove_prefix(1);
    auto digits = rest.find_first_not_of("0123456789");
    if (digits == 0) return false;
    rest.remove_prefix(digits == std::string_view::npos ? rest.size() : digits);
  }
  if (rest.starts_with("/")) rest.remove_prefix(1);
  return rest.find_first_not_of("0123456789") == std::string_view::npos;
}

std::optional<std::vector<std::uint64_t>> parse_lengths(std::string const& text) {
  std::vector<std::uint64_t> out;
  for (auto const& item : bench::split_list(text)) {
    if (item.empty() || item.find_first_not_of("0123456789") != std::string::npos || item.size() > 9) return std::nullopt;
    out.push_back(std::stoull(item));
  }
  return out;
}

// Every count and time has a ceiling, so a run always ends by itself.
std::string check(settings const& s) {
  auto in = [](std::int64_t v, std::int64_t lo, std::int64_t hi) { return v >= lo && v <= hi; };
  using std::chrono::milliseconds;
  if (!bench::is_loopback_nats_url(s.nats_url))
    return "--nats-url must be nats://127.0.0.1[:PORT] or nats://localhost[:PORT]";
  if (!s.redis_url.empty() && !is_loopback_redis_url(s.redis_url))
    return "--redis-url must be empty or redis://127.x.x.x[:PORT][/DB] or redis://localhost[:PORT][/DB]";
  if (s.stream.empty() || s.stream.size() > 48 || s.stream.find_first_not_of(
                                                      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") !=
                                                      std::string::npos)
    return "--stream must be 1-48 of A-Z a-z 0-9 - _";
  if (s.stream == "SIGSTREAM") return "--stream must not be the instances' default stream SIGSTREAM";
  if (!domain::is_valid_subject_prefix(s.prefix)) return "--subject-prefix must be dotted tokens of [A-Za-z0-9_-]";
  if (s.prefix == "sigstream") return "--subject-prefix must not be the instances' default prefix sigstream";
  auto lengths = parse_lengths(s.lengths);
  if (!lengths || lengths->empty() || lengths->size() > 20) return "--lengths needs 1..20 comma-separated numbers";
  std::uint64_t total = 0;
  for (auto l : *lengths) {
    if (l > 10'000'000) return "--lengths: each length must be at most 10000000";
    total += l;
  }
  if (total > 20'000'000) return "--lengths must add up to at most 20000000";
  if (std::set<std::uint64_t>(lengths->begin(), lengths->end()).size() != lengths->size())
    return "--lengths must not repeat a length";
  if (!in(s.repeats, 1, 50)) return "--repeats must be 1..50";
  if (!in(s.window, 1, 65'536)) return "--window must be 1..65536";
  if (!in(s.snapshot_every, 0, 10'000'000)) return "--snapshot-every must be 0..10000000";
  if (s.ready_timeout < milliseconds(1000) || s.ready_timeout > milliseconds(600'000))
    return "--ready-timeout must be 1s..10m";
  if (s.join_timeout < milliseconds(1000) || s.join_timeout > milliseconds(1'800'000))
    return "--join-timeout must be 1s..30m";
  if (s.stop_timeout < milliseconds(1000) || s.stop_timeout > milliseconds(120'000))
    return "--stop-timeout must be 1s..2m";
  if (s.instance_timeout < milliseconds(60'000) || s.instance_timeout > milliseconds(86'400'000))
    return "--instance-timeout must be 1m..24h";
  if (access(s.serve_bin.c_str(), X_OK) != 0) return "--serve-bin: not an executable file: " + s.serve_bin;
  if (!s.report.empty()) {
    auto parent = std::filesystem::path(s.report).parent_path();
    std::error_code ec;
    if (!parent.empty() && !std::filesystem::is_directory(parent, ec))
      return "--report: no directory " + parent.string() + " (run from the checkout, or give --report PATH)";
  }
  return {};
}

// --- Filling. ----------------------------------------------------------------

struct room_plan {
  std::uint64_t length = 0;  // signals after the 2 joins
  std::string name, token, subject, snapshot_subject, peer_a, peer_b;
};

struct room_fill {
  std::uint64_t events = 0, bytes = 0;
  double seconds = 0;
  std::uint64_t snapshots = 0;                          // stored on the room's .s subject
  std::uint64_t last_snapshot_seq = 0, last_snapshot_events = 0;
  double snapshot_seconds = 0;                          // blocked in put_snapshot
};

struct fill_result {
  bool ok = false;
  std::string error;
  std::uint64_t events = 0, bytes = 0, data_min = SIZE_MAX, data_max = 0, data_total = 0, signals = 0;
  std::uint64_t snapshots = 0;
  double seconds = 0;
  std::vector<room_fill> rooms;
};

// The stream seq of every event of a room, set by its acknowledgement (on
// nats.c's thread, before publish_window::done): 0 until then.
constexpr std::uint64_t seq_failed = UINT64_MAX;

// The room as the instances following it see it while it fills: folds each
// event once its seq is known (in publish order, which is seq order: one
// connection, one stream) and stores a snapshot whenever the room's count of
// events reaches a multiple of `every`, as service/room/room.cpp `apply` does.
class fill_follower {
 public:
  fill_follower(nats::event_log& log, room_plan const& room, std::uint64_t total, std::uint64_t every)
      : log_(log),
        room_(room),
        every_(every),
        seqs_(std::make_shared<std::vector<std::atomic<std::uint64_t>>>(total)) {}

  // Where the acknowledgement of event `index` puts its seq.
  std::shared_ptr<std::vector<std::atomic<std::uint64_t>>> const& seqs() const { return seqs_; }

  void published(domain::event e) { unfolded_.push_back(std::move(e)); }

  // Folds every event whose seq has arrived, in order; stores the snapshots
  // due. False once a snapshot could not be stored (`error` says why).
  bool advance(room_fill& rf, std::string& error) {
    while (!unfolded_.empty()) {
      std::uint64_t seq = (*seqs_)[folded_].load(std::memory_order_acquire);
      if (seq == 0 || seq == seq_failed) return true;  // not yet, or the window reports the failure
      auto& e = unfolded_.front();
      e.seq = seq;
      state_ = domain::evolve(std::move(state_), e);
      unfolded_.pop_front();
      ++folded_;
      if (every_ > 0 && folded_ % every_ == 0) {
        auto start = steady::now();
        bool stored = log_.put_snapshot(room_.snapshot_subject, codec::encode_snapshot(state_, seq, folded_),
                                        fmt::format("snap.{}.{}", room_.token, seq));
        rf.snapshot_seconds += std::chrono::duration<double>(steady::now() - start).count();
        if (!stored) {
          error = fmt::format("the snapshot of {} at seq {} was not stored (does the stream allow rollups?)",
                              room_.name, seq);
          return false;
        }
        ++rf.snapshots;
        rf.last_snapshot_seq = seq;
        rf.last_snapshot_events = folded_;
      }
    }
    return true;
  }

  std::uint64_t folded() const { return folded_; }

 private:
  nats::event_log& log_;
  room_plan const& room_;
  std::uint64_t every_;
  std::shared_ptr<std::vector<std::atomic<std::uint64_t>>> seqs_;
  std::deque<domain::event> unfolded_;  // published, seq not yet known: at most the window
  std::uint64_t folded_ = 0;
  domain::room_state state_;
};

// An ICE candidate as a browser trickles it: ~100 bytes of JSON.
std::string candidate_data(std::uint64_t n) {
  return fmt::format(R"({{"candidate":"candidate:{} 1 udp 2122260223 192.168.{}.{} {} typ host generation 0"}})",
                     1'000'000'000 + n * 7919 % 3'000'000'000ULL, n % 255, 1 + n % 254, 40'000 + n % 20'000);
}

fill_result fill(nats::event_log& log, bench::publish_window& window, std::vector<room_plan> const& plan,
                 std::uint64_t snapshot_every) {
  fill_result r;
  bool tty = isatty(STDERR_FILENO) == 1;
  std::string run_id = fmt::format("joinbench-{:x}-{}", bench::wall_ms(), getpid());
  constexpr auto stall = std::chrono::milliseconds(30'000);
  auto start = steady::now();
  for (auto const& room : plan) {
    auto room_start = steady::now();
    auto last_progress = room_start;
    std::uint64_t acked_before = window.acked();
    room_fill rf;
    std::uint64_t total = room.length + 2;
    fill_follower follower(log, room, total, snapshot_every);
    for (std::uint64_t i = 0; i < total && window.failed() == 0 && r.error.empty(); ++i) {
      if (!window.acquire(stall)) {
        r.error = "no publish acknowledgement for 30 s";
        break;
      }
      domain::event e;
      e.time_ms = bench::wall_ms();
      e.instance = "bench-fill";
      if (i < 2) {
        auto const& peer = i == 0 ? room.peer_a : room.peer_b;
        e.body = domain::peer_joined{peer, fmt::format(R"({{"name":"{}"}})", peer)};
      } else {
        bool forward = i % 2 == 0;
        std::string data = candidate_data(i);
        r.data_min = std::min<std::uint64_t>(r.data_min, data.size());
        r.data_max = std::max<std::uint64_t>(r.data_max, data.size());
        r.data_total += data.size();
        ++r.signals;
        e.body = domain::signal_sent{forward ? room.peer_a : room.peer_b, forward ? room.peer_b : room.peer_a,
                                     std::move(data)};
      }
      std::string payload = codec::encode_event(room.name, e);
      rf.bytes += payload.size();
      follower.published(std::move(e));
      log.append(room.subject, std::move(payload), fmt::format("{}-{}", run_id, r.events + rf.events),
                 [&window, seqs = follower.seqs(), i](nats::append_result result) {
                   std::uint64_t seq = result.ok && !result.duplicate ? result.seq : seq_failed;
                   (*seqs)[i].store(seq, std::memory_order_release);
                   window.done(result);
                 });
      ++rf.events;
      if (!follower.advance(rf, r.error)) break;
      if (tty && steady::now() - last_progress >= std::chrono::milliseconds(500)) {
        last_progress = steady::now();
        double s = std::max(1e-9, std::chrono::duration<double>(last_progress - room_start).count());
        std::uint64_t acked = window.acked() - acked_before;
        std::cerr << fmt::format("\r\033[Kfilling {}: {} of {} events sent, {} acked ({:.0f} events/s)", room.name,
                                 rf.events, total, acked, acked / s)
                  << std::flush;
      }
    }
    if (!window.drain(stall) && r.error.empty()) r.error = "publishes still unacknowledged 30 s after the last one";
    if (r.error.empty() && window.failed() == 0 && follower.advance(rf, r.error) && follower.folded() != rf.events)
      r.error = fmt::format("{}: {} of {} events folded", room.name, follower.folded(), rf.events);
    if (tty) std::cerr << "\r\033[K" << std::flush;
    if (r.error.empty() && window.failed() > 0)
      r.error = fmt::format("{} publishes failed (first: {})", window.failed(), window.first_error());
    rf.seconds = std::chrono::duration<double>(steady::now() - room_start).count();
    r.events += rf.events;
    r.bytes += rf.bytes;
    r.snapshots += rf.snapshots;
    r.rooms.push_back(rf);
    if (!r.error.empty()) break;
    std::cerr << fmt::format("filled {}: {} events ({} signals), {:.1f} MB, in {:.2f} s = {:.0f} events/s; "
                             "{} snapshots ({:.2f} s), the last at seq {} after {} events\n",
                             room.name, rf.events, room.length, rf.bytes / 1e6, rf.seconds,
                             rf.seconds > 0 ? rf.events / rf.seconds : 0.0, rf.snapshots, rf.snapshot_seconds,
                             rf.last_snapshot_seq, rf.last_snapshot_events);
  }
  r.seconds = std::chrono::duration<double>(steady::now() - start).count();
  if (r.error.empty() && window.acked() != r.events)
    r.error = fmt::format("{} of {} publishes acknowledged", window.acked(), r.events);
  r.ok = r.error.empty();
  return r;
}

// --- One instance, one join. -------------------------------------------------

std::string read_head(std::string const& path, std::size_t limit) {
  std::ifstream in(path, std::ios::binary);
  std::string out(limit, '\0');
  in.read(out.data(), static_cast<std::streamsize>(limit));
  out.resize(static_cast<std::size_t>(in.gcount()));
  return out;
}

// What the io thread learns about one connection. Guarded by `mutex`.
struct join_probe {
  std::mutex mutex;
  std::condition_variable changed;
  bool opened = false, joined = false, acked = false, closed = false;
  std::string error;  // connect failure, error frame, unexpected close
  std::string joined_frame;
  steady::time_point open_at, join_sent_at, joined_at, ack_at;

  template <class Predicate>
  bool wait(std::chrono::milliseconds limit, Predicate done) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, limit, [&] { return done() || !error.empty(); }) && error.empty();
  }
};

struct sample {
  std::uint64_t repeat = 0;
  std::string instance;
  std::uint64_t events_before = 0;  // the room's history when the join was sent
  std::uint16_t port = 0;
  double ready_ms = 0, connect_ms = 0, join_ms = 0, leave_ack_ms = 0, stop_ms = 0;
  std::uint64_t joined_seq = 0;
  // From the instance's /metrics after the leave's ack; -1 if unread.
  std::int64_t replayed_events = -1;  // events it read back from the stream
  std::int64_t room_snapshots = -1;   // snapshots it wrote to the stream
  std::string ended;      // how the instance ended
  std::string log_head;   // the instance's first output (warnings), if any
};

struct run_failure {
  std::string error;
  bool port_taken = false;  // the instance could not listen: retry on another port
};

// The value of `"key":` in a flat JSON object (the members we read).
std::string member_raw(protocol::json::document const& doc, std::string_view key) {
  auto const* v = doc.object.find(key);
  return v ? std::string(v->raw) : std::string();
}

// Checks the `joined` reply: the filled room's 2 peers and nobody else.
// The peers array holds {"peer":ID,"meta":{...}} objects whose metas (the
// filled ones, {"name":ID}) never contain the text "peer":, so counting it
// counts the peers.
std::string check_joined(std::string const& frame, room_plan const& room, std::uint64_t& seq) {
  auto doc = protocol::json::parse(frame, 32);
  if (!doc.ok() || doc.root.kind != protocol::json::kind::object) return "the joined reply is not a JSON object";
  auto const* room_value = doc.object.find("room");
  if (room_value == nullptr || room_value->text != room.name) return "the joined reply names another room";
  std::string peers = member_raw(doc, "peers");
  std::size_t count = 0;
  for (std::size_t at = peers.find("\"peer\":"); at != std::string::npos; at = peers.find("\"peer\":", at + 1)) ++count;
  bool has_a = peers.find("\"peer\":" + json_quote(room.peer_a)) != std::string::npos;
  bool has_b = peers.find("\"peer\":" + json_quote(room.peer_b)) != std::string::npos;
  if (count != 2 || !has_a || !has_b)
    return fmt::format("the room was not replayed correctly: expected peers {} and {}, got {}", room.peer_a, room.peer_b,
                       peers.empty() ? "(no peers member)" : peers);
  std::string seq_text = member_raw(doc, "seq");
  seq = seq_text.empty() || seq_text.find_first_not_of("0123456789") != std::string::npos ? 0 : std::stoull(seq_text);
  return {};
}

// The value of a counter in a Prometheus page (one series each); -1 if absent.
std::int64_t metric_value(std::string const& page, std::string const& name) {
  for (std::size_t at = page.find(name); at != std::string::npos; at = page.find(name, at + 1)) {
    if (at > 0 && page[at - 1] != '\n') continue;
    std::size_t after = at + name.size();
    if (after >= page.size() || (page[after] != '{' && page[after] != ' ')) continue;
    std::size_t space = page.find(' ', page[after] == '{' ? page.find('}', after) : after);
    if (space == std::string::npos) return -1;
    std::size_t end = page.find_first_not_of("0123456789", space + 1);
    std::string digits = page.substr(space + 1, end == std::string::npos ? std::string::npos : end - space - 1);
    return digits.empty() ? -1 : std::stoll(digits);
  }
  return -1;
}

class join_runner {
 public:
  join_runner(settings const& s, std::string bin, std::string dir) : s_(s), bin_(std::move(bin)), dir_(std::move(dir)) {
    thread_ = std::thread([this] { io_.run(); });
  }
  ~join_runner() {
    work_.reset();
    io_.stop();
    thread_.join();
  }

  std::vector<std::string> instance_args(std::uint16_t port, std::string const& instance) const {
    return {bin_,
            "serve",
            "--listen",
            fmt::format("127.0.0.1:{}", port),
            "--nats-url",
            s_.nats_url,
            "--redis-url",
            s_.redis_url,
            "--stream",
            s_.stream,
            "--subject-prefix",
            s_.prefix,
            "--instance-id",
            instance,
            "--log-level",
            "warn",
            // The filled peers belong to "bench-fill", which never sends a
            // heartbeat: an instance that had watched heartbeats for a full
            // --instance-timeout would record their leave (expired). Far
            // longer than any run, so no instance ever sweeps.
            "--instance-timeout",
            fmt::format("{}ms", s_.instance_timeout.count())};
  }

  // One fresh instance, one join. Retries (up to 3 ports) only when the
  // instance could not listen on the port it was given.
  std::variant<sample, run_failure> run(room_plan const& room, std::uint64_t repeat, std::string const& instance) {
    run_failure last;
    for (int attempt = 0; attempt < 3; ++attempt) {
      auto result = run_once(room, repeat, instance);
      if (std::holds_alternative<sample>(result)) return result;
      last = std::get<run_failure>(result);
      if (!last.port_taken) break;
      std::cerr << "  (the port was taken before the instance bound it; retrying on another)\n";
    }
    return last;
  }

 private:
  std::variant<sample, run_failure> run_once(room_plan const& room, std::uint64_t repeat, std::string const& instance) {
    sample out;
    out.repeat = repeat;
    out.instance = instance;
    auto port = bench::free_port();
    if (!port) return run_failure{"no free loopback port"};
    out.port = *port;
    std::string log_path = fmt::format("{}/{}.log", dir_, instance);
    // The instance is configured by its flags alone (see clean_environment).
    bench::child_process process;
    std::string error;
    if (!process.spawn(instance_args(*port, instance), log_path, bench::child_environment::without_sigstream_variables,
                       error))
      return run_failure{error};
    auto failed = [&](std::string what) {
      process.stop(s_.stop_timeout);
      std::string head = read_head(log_path, 2000);
      run_failure f;
      f.port_taken = head.find("cannot listen") != std::string::npos;
      f.error = fmt::format("{} (instance {} on port {}, {}){}", what, instance, *port, process.how_ended(),
                            head.empty() ? "" : "; its output:\n" + head);
      return f;
    };

    // Ready: /readyz answers 200.
    tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), *port);
    std::string host = fmt::format("127.0.0.1:{}", *port);
    auto ready_at = bench::wait_for_status_200(io_, *port, "/readyz", process.started() + s_.ready_timeout,
                                               [&] { return process.exited(); });
    if (!ready_at) {
      if (process.exited()) return failed("the instance exited before /readyz answered 200");
      return failed(fmt::format("/readyz did not answer 200 within {} ms", s_.ready_timeout.count()));
    }
    out.ready_ms = bench::ms_between(process.started(), *ready_at);

    // The join, timed from the frame's send to the `joined` reply.
    auto parsed = bench::parse_loopback_url(fmt::format("ws://127.0.0.1:{}/ws", *port));
    if (!parsed.url) return failed("bad instance URL: " + parsed.error);
    bench::client_settings cs;
    cs.url = *parsed.url;
    cs.endpoint = endpoint;
    cs.timeout = std::chrono::milliseconds(5000);
    cs.max_queue = 16;
    auto client = bench::make_ws_client(io_, cs);
    auto probe = std::make_shared<join_probe>();
    std::string join_frame = fmt::format(R"({{"type":"join","room":{},"id":1}})", json_quote(room.name));
    bench::ws_client::callbacks handlers;
    std::weak_ptr<bench::ws_client> weak_client = client;
    // Runs on the client's strand.
    handlers.on_open = [probe, weak_client, join_frame](std::string) {
      auto c = weak_client.lock();
      std::lock_guard lock(probe->mutex);
      probe->opened = true;
      probe->open_at = probe->join_sent_at = steady::now();
      if (c) c->send(join_frame);
      probe->changed.notify_all();
    };
    handlers.on_fail = [probe](std::string why) {
      std::lock_guard lock(probe->mutex);
      probe->error = "WebSocket: " + why;
      probe->changed.notify_all();
    };
    handlers.on_message = [probe](std::string_view frame) {
      auto now = steady::now();
      auto doc = protocol::json::parse(frame, 32);
      auto const* type = doc.ok() ? doc.object.find("type") : nullptr;
      std::lock_guard lock(probe->mutex);
      if (type == nullptr) {
        probe->error = "unreadable frame from the instance: " + std::string(frame.substr(0, 300));
      } else if (type->text == "joined" && !probe->joined) {
        probe->joined = true;
        probe->joined_at = now;
        probe->joined_frame = std::string(frame);
      } else if (type->text == "ack" && probe->joined) {
        probe->acked = true;
        probe->ack_at = now;
      } else if (type->text == "error") {
        probe->error = "the instance answered with an error: " + std::string(frame.substr(0, 500));
      }
      probe->changed.notify_all();
    };
    handlers.on_close = [probe](std::string reason, bool expected) {
      std::lock_guard lock(probe->mutex);
      probe->closed = true;
      if (!expected && probe->error.empty()) probe->error = "the instance closed the WebSocket: " + reason;
      probe->changed.notify_all();
    };
    auto connect_start = steady::now();
    client->start(std::move(handlers));
    if (!probe->wait(std::chrono::milliseconds(10'000), [&] { return probe->opened; })) {
      client->close();
      std::lock_guard lock(probe->mutex);
      return failed(probe->error.empty() ? "the WebSocket did not open within 10 s" : probe->error);
    }
    if (!probe->wait(s_.join_timeout, [&] { return probe->joined; })) {
      client->close();
      std::lock_guard lock(probe->mutex);
      return failed(probe->error.empty() ? fmt::format("no joined reply within {} ms", s_.join_timeout.count())
                                         : probe->error);
    }
    std::string joined_frame;
    {
      std::lock_guard lock(probe->mutex);
      out.connect_ms = bench::ms_between(connect_start, probe->open_at);
      out.join_ms = bench::ms_between(probe->join_sent_at, probe->joined_at);
      joined_frame = probe->joined_frame;
    }
    if (auto wrong = check_joined(joined_frame, room, out.joined_seq); !wrong.empty()) {
      client->close();
      return failed(wrong);
    }

    // Leave, and wait for its ack: the leave is stored before the instance
    // stops, so the next repeat finds the room as filled (plus join+leave).
    auto leave_sent = steady::now();
    client->send(R"({"type":"leave","id":2})");
    if (!probe->wait(std::chrono::milliseconds(10'000), [&] { return probe->acked; })) {
      client->close();
      std::lock_guard lock(probe->mutex);
      return failed(probe->error.empty() ? "no ack of the leave within 10 s" : probe->error);
    }
    {
      std::lock_guard lock(probe->mutex);
      out.leave_ack_ms = bench::ms_between(leave_sent, probe->ack_at);
    }
    {
      auto answer = std::make_shared<std::promise<bench::http_result>>();
      auto future = answer->get_future();
      bench::http_get(io_, endpoint, host, "/metrics", std::chrono::milliseconds(2000),
                      [answer](bench::http_result r) { answer->set_value(std::move(r)); });
      if (future.wait_for(std::chrono::milliseconds(3000)) == std::future_status::ready) {
        auto page = future.get();
        if (page.ok && page.status == 200) {
          out.replayed_events = metric_value(page.body, "sigstream_replayed_events_total");
          out.room_snapshots = metric_value(page.body, "sigstream_room_snapshots_total");
        }
      }
    }
    client->close();
    probe->wait(std::chrono::milliseconds(6000), [&] { return probe->closed; });  // bounded by the client's timeout too
    out.stop_ms = process.stop(s_.stop_timeout);
    out.ended = process.how_ended();
    out.log_head = read_head(log_path, 2000);
    return out;
  }

  settings const& s_;
  std::string bin_, dir_;
  asio::io_context io_{1};
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{io_.get_executor()};
  std::thread thread_;
};

// --- Report. -----------------------------------------------------------------

std::string json_spread(bench::spread const& s) {
  return fmt::format("{{\"min\":{:.3f},\"median\":{:.3f},\"max\":{:.3f}}}", s.min, s.median, s.max);
}

struct length_result {
  room_plan const* room = nullptr;
  std::vector<sample> samples;

  std::vector<double> field(double sample::*member) const {
    std::vector<double> out;
    for (auto const& s : samples) out.push_back(s.*member);
    return out;
  }
  // Joins after the first of this length (repeat > 1).
  std::vector<double> later() const {
    std::vector<double> out;
    for (auto const& s : samples)
      if (s.repeat > 1) out.push_back(s.join_ms);
    return out;
  }
};

// Deletes the heartbeat bucket the instances created beside the stream
// (a JetStream stream named KV_<stream>_INSTANCES). event_log has no call
// for it, so a second log is pointed at that stream: start() refuses its
// shape but leaves the connection up, and delete_stream() removes it.
bool delete_heartbeat_bucket(settings const& s) {
  log_factory quiet("bench-join", "off");
  nats::log_settings ls;
  ls.url = s.nats_url;
  ls.stream = "KV_" + s.stream + "_INSTANCES";
  ls.subject_prefix = s.prefix;
  ls.create_stream = false;
  ls.connect_attempts = 1;
  ls.client_name = "sigstream-bench join (cleanup)";
  nats::event_log bucket(ls, quiet.make("nats"));
  std::atomic<bool> never{false};
  bucket.start(never);  // false: not a room stream, as expected
  bool gone = bucket.delete_stream();
  bucket.close();
  return gone;
}

}  // namespace

int join_bench_command(int argc, char** argv) {
  settings s;
  s.report = "docs/bench-runs/join-latency-" + bench::utc_now("%Y-%m-%d") + ".json";
  options opts("join",
               "Measure the latency of the first join of a room on a fresh instance against the length of the\n"
               "room's history. Fills a stream of its own (--stream, default SIGSTREAM-JOINBENCH, never the\n"
               "instances' stream) with one room join-bench-L per length L of --lengths: 2 joined peers, then L\n"
               "signals of ~100 B. While filling, it writes the room snapshots that instances following the room\n"
               "as it grew would have written (--snapshot-every, as `serve`'s flag: every N events of the room,\n"
               "the same payload, subject and message id); --snapshot-every 0 writes none, the worst case of a\n"
               "room whose snapshots were never written (a stream filled by an older version): its first rebuild\n"
               "replays everything, and leaves a snapshot for the later ones, so the first repeat of each length\n"
               "is reported apart. Then, --repeats times per length, starts a fresh `sigstream serve` on that\n"
               "stream (a free loopback port, no Redis unless --redis-url: every first join rebuilds the room\n"
               "from the stream, from its snapshot if any), waits for /readyz 200, opens a WebSocket to /ws and\n"
               "times {type:join} to `joined`, whose peers must be exactly the 2 filled peers; then leaves\n"
               "(waiting for the ack), reads the instance's /metrics (events replayed, snapshots written), closes,\n"
               "and stops the instance with SIGTERM. Each repeat adds a join and a leave to the room (2 events).\n"
               "The stream (and the instances' heartbeat bucket) is deleted at the end unless --keep; a stream\n"
               "that already holds events is never touched. The instances get only their flags: SIGSTREAM_*\n"
               "variables are not passed on. NATS and Redis on loopback only. Table on stdout, progress on\n"
               "stderr, every sample in the JSON report.",
               "sigstream-bench");
  opts.add_string("nats-url", &s.nats_url, "NATS server with JetStream (loopback only).");
  opts.add_string("redis-url", &s.redis_url,
                  "Presence cache for the instances (loopback only); empty: none, so every first join rebuilds the "
                  "room from the stream alone (its snapshot, then the events after it; the default).");
  opts.add_string("stream", &s.stream, "The benchmark's own stream (created, filled, deleted).");
  opts.add_string("subject-prefix", &s.prefix, "Subject prefix of the benchmark's rooms.");
  opts.add_string("lengths", &s.lengths, "History lengths (signals per room), comma-separated; one room each.");
  opts.add_int("repeats", &s.repeats, "Fresh instances (one join each) per length (1..50).");
  opts.add_string("serve-bin", &s.serve_bin, "The sigstream executable to run as the instance (default: `sigstream` beside this executable).");
  opts.add_flag("keep", &s.keep, "Keep the stream (and the heartbeat bucket) at the end, e.g. for `sigstream history`.");
  opts.add_string("report", &s.report, "Write the JSON report to this file (its directory must exist).");
  opts.add_int("window", &s.window, "Publishes in flight while filling.");
  opts.add_int("snapshot-every", &s.snapshot_every,
               "While filling, store the room's snapshot every N events of the room, as instances that followed the "
               "room while it grew would have (default 1000, `serve`'s default). 0: none (the worst case: the first "
               "rebuild replays the whole room, and leaves a snapshot for later ones).");
  opts.add_duration("ready-timeout", &s.ready_timeout, "Bound on each instance's start, spawn to /readyz 200.");
  opts.add_duration("join-timeout", &s.join_timeout, "Bound on each join, join sent to `joined`.");
  opts.add_duration("stop-timeout", &s.stop_timeout, "After SIGTERM, how long an instance may take before SIGKILL.");
  opts.add_duration("instance-timeout", &s.instance_timeout,
                    "--instance-timeout of the instances: longer than the run, so that none expires the filled "
                    "peers (their instance bench-fill never sends a heartbeat).");
  opts.command_line_only({"redis-url", "stream", "subject-prefix", "lengths", "repeats", "serve-bin", "keep", "report",
                          "window", "snapshot-every", "ready-timeout", "join-timeout", "stop-timeout",
                          "instance-timeout"});
  if (auto done = opts.parse_or_exit(argc, argv)) return *done;
  if (auto problem = check(s); !problem.empty()) {
    std::cerr << "sigstream-bench join: " << problem << "\n";
    return 2;
  }
  std::string started_at = bench::utc_now();
  std::string load_at_start = bench::load_average();
  std::string bin = bench::resolved_path(s.serve_bin);
  std::vector<room_plan> plan;
  auto const lengths = parse_lengths(s.lengths).value();  // check() accepted them
  for (auto length : lengths) {
    room_plan r;
    r.length = length;
    r.name = fmt::format("join-bench-{}", length);
    r.token = domain::room_token(r.name);
    r.subject = domain::subjects_for(s.prefix, r.name).events;
    r.snapshot_subject = domain::subjects_for(s.prefix, r.name).snapshot;
    r.peer_a = fmt::format("fill-{}-a", length);
    r.peer_b = fmt::format("fill-{}-b", length);
    plan.push_back(std::move(r));
  }

  std::string why;
  auto made = make_temp_dir("sigstream-bench-join-", &why);
  if (!made) {
    std::cerr << "sigstream-bench join: " << why << "\n";
    return 1;
  }
  std::string dir = *made;
  struct remove_dir {
    std::string path;
    ~remove_dir() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  } cleanup_dir{dir};

  // The window outlives the log: acknowledgement callbacks point at it.
  bench::publish_window window(static_cast<std::uint64_t>(s.window));
  log_factory logs("bench-join", "warn");
  nats::event_log log(bench::fill_log_settings(s.nats_url, s.stream, s.prefix, "sigstream-bench join"),
                      logs.make("nats"));
  // Never fill, use or delete a stream that holds anything already.
  auto counts = bench::open_stream(log, "sigstream-bench join", s.nats_url, s.stream, s.prefix);
  if (!counts) return 1;
  if (!counts->empty()) {
    std::uint64_t held = 0;
    for (auto const& [subject, n] : *counts) held += n;
    std::cerr << fmt::format(
        "sigstream-bench join: stream {} already holds {} events on {} subjects; not touching it (delete it, or "
        "choose another --stream)\n",
        s.stream, held, counts->size());
    return 1;
  }
  auto cleanup = [&] {
    if (s.keep) return std::pair{false, false};
    bool stream_deleted = log.delete_stream();
    bool bucket_deleted = delete_heartbeat_bucket(s);
    return std::pair{stream_deleted, bucket_deleted};
  };

  std::uint64_t planned = 0;
  for (auto const& r : plan) planned += r.length + 2;
  std::cerr << fmt::format("filling stream {} at {}: {} rooms, {} events, {}\n", s.stream, s.nats_url, plan.size(),
                           planned,
                           s.snapshot_every > 0 ? fmt::format("a room snapshot every {} events", s.snapshot_every)
                                                : std::string("no room snapshots"));
  auto filled = fill(log, window, plan, static_cast<std::uint64_t>(s.snapshot_every));
  if (filled.ok) {
    counts = bench::stream_counts(log, s.prefix);
    for (std::size_t i = 0; i < plan.size(); ++i) {
      auto const& r = plan[i];
      if (!counts || (*counts)[r.subject] != r.length + 2) {
        filled.ok = false;
        filled.error = fmt::format("after the fill, room {} does not hold {} events", r.name, r.length + 2);
        break;
      }
      // A rollup subject keeps only its newest message.
      std::uint64_t snapshots_kept = filled.rooms[i].snapshots > 0 ? 1 : 0;
      if ((*counts)[r.snapshot_subject] != snapshots_kept) {
        filled.ok = false;
        filled.error = fmt::format("after the fill, room {} holds {} snapshots instead of {}", r.name,
                                   (*counts)[r.snapshot_subject], snapshots_kept);
        break;
      }
    }
  }
  if (!filled.ok) {
    std::cerr << "sigstream-bench join: fill failed: " << filled.error << "\n";
    cleanup();
    return 1;
  }

  std::cerr << fmt::format("joining: {} fresh instances per room ({}), Redis {}\n", s.repeats, bin,
                           s.redis_url.empty() ? "off" : s.redis_url);
  std::vector<length_result> results;
  std::string failure;
  {
    join_runner runner(s, bin, dir);
    std::uint64_t n = 0;
    for (auto const& room : plan) {
      length_result lr;
      lr.room = &room;
      for (std::int64_t repeat = 1; repeat <= s.repeats && failure.empty(); ++repeat) {
        std::string instance = fmt::format("bench-join-{}", ++n);
        auto result = runner.run(room, static_cast<std::uint64_t>(repeat), instance);
        if (auto const* f = std::get_if<run_failure>(&result)) {
          failure = fmt::format("{} (repeat {}): {}", room.name, repeat, f->error);
          break;
        }
        auto sm = std::get<sample>(std::move(result));
        sm.events_before = room.length + 2 + 2 * static_cast<std::uint64_t>(repeat - 1);
        std::cerr << fmt::format("  {} repeat {}/{} ({}): ready {:.1f} ms, connect {:.1f} ms, join {:.1f} ms, "
                                 "{} events replayed, {} snapshots written, stopped in {:.0f} ms ({})\n",
                                 room.name, repeat, s.repeats, instance, sm.ready_ms, sm.connect_ms, sm.join_ms,
                                 sm.replayed_events, sm.room_snapshots, sm.stop_ms, sm.ended);
        if (!sm.log_head.empty())
          std::cerr << "    instance output: " << sm.log_head.substr(0, 500) << (sm.log_head.back() == '\n' ? "" : "\n");
        lr.samples.push_back(std::move(sm));
      }
      results.push_back(std::move(lr));
      if (!failure.empty()) break;
    }
  }
  auto [stream_deleted, bucket_deleted] = cleanup();
  log.close();
  if (!failure.empty()) {
    std::cerr << "sigstream-bench join: FAILED: " << failure << "\n";
    std::cerr << (s.keep ? fmt::format("stream {} kept\n", s.stream)
                         : fmt::format("stream {} {}\n", s.stream, stream_deleted ? "deleted" : "NOT deleted"));
    return 1;
  }

  // --- The table and the report.
  auto machine = bench::machine_with_load(load_at_start);
  std::string text;
  text += fmt::format("sigstream-bench join {} ({})\n", SIGSTREAM_VERSION, started_at);
  text += bench::machine_line(machine);
  text += fmt::format("stream {} at {}; instances: {} serve, Redis {}; {} fresh instances per length\n", s.stream,
                      s.nats_url, bin, s.redis_url.empty() ? "off (every first join rebuilds from the stream)" : s.redis_url,
                      s.repeats);
  text += fmt::format("fill: {} events, {:.1f} MB stored, in {:.1f} s = {:.0f} events/s; signal data {}..{} B; {}\n",
                      filled.events, filled.bytes / 1e6, filled.seconds,
                      filled.seconds > 0 ? filled.events / filled.seconds : 0.0, filled.data_min, filled.data_max,
                      s.snapshot_every > 0
                          ? fmt::format("{} room snapshots (one every {} events of a room)", filled.snapshots,
                                        s.snapshot_every)
                          : std::string("no room snapshots (--snapshot-every 0)"));
  text += fmt::format("  {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>11} {:>11} {:>9} {:>9}\n", "history", "join min",
                      "median", "max", "1st join", "later med", "1st replay", "later repl", "ready med", "conn med");
  text += fmt::format("  {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>11} {:>11} {:>9} {:>9}\n", "(signals)", "(ms)", "(ms)",
                      "(ms)", "(ms)", "(ms)", "(events)", "(max ev.)", "(ms)", "(ms)");
  for (auto const& r : results) {
    auto join = bench::spread_of(r.field(&sample::join_ms));
    auto later = r.later();
    std::int64_t later_replay = -1;
    for (auto const& sm : r.samples)
      if (sm.repeat > 1) later_replay = std::max(later_replay, sm.replayed_events);
    text += fmt::format("  {:>10} {:>9.1f} {:>9.1f} {:>9.1f} {:>9.1f} {:>9} {:>11} {:>11} {:>9.1f} {:>9.2f}\n",
                        r.room->length, join.min, join.median, join.max, r.samples.front().join_ms,
                        later.empty() ? std::string("-") : fmt::format("{:.1f}", bench::spread_of(later).median),
                        r.samples.front().replayed_events,
                        later_replay < 0 ? std::string("-") : std::to_string(later_replay),
                        bench::spread_of(r.field(&sample::ready_ms)).median,
                        bench::spread_of(r.field(&sample::connect_ms)).median);
  }
  // The cost of history: the slope between the shortest and the longest room.
  auto shortest = std::min_element(results.begin(), results.end(),
                                   [](auto const& a, auto const& b) { return a.room->length < b.room->length; });
  auto longest = std::max_element(results.begin(), results.end(),
                                  [](auto const& a, auto const& b) { return a.room->length < b.room->length; });
  // The first join of a length rebuilds the room as filled; later ones may
  // start from a snapshot the first one left (always with --snapshot-every 0).
  double per_event_us = 0, first_per_event_us = 0;
  if (longest->room->length > shortest->room->length) {
    double span = static_cast<double>(longest->room->length - shortest->room->length);
    double extra_ms = bench::spread_of(longest->field(&sample::join_ms)).median -
                      bench::spread_of(shortest->field(&sample::join_ms)).median;
    per_event_us = extra_ms * 1000.0 / span;
    first_per_event_us = (longest->samples.front().join_ms - shortest->samples.front().join_ms) * 1000.0 / span;
    auto rate = [](double us) {
      return us >= 0.01 ? fmt::format(" = {:.0f} events/s replayed", 1e6 / us) : std::string(" (none measurable)");
    };
    text += fmt::format("history cost ({} vs {} signals): first join {:.3f} us per event{}; median join {:.3f} us per "
                        "event{}\n",
                        longest->room->length, shortest->room->length, first_per_event_us, rate(first_per_event_us),
                        per_event_us, rate(per_event_us));
  }

  text += s.keep ? fmt::format("stream {} kept\n", s.stream)
                 : fmt::format("stream {} {}; heartbeat bucket {}\n", s.stream, stream_deleted ? "deleted" : "NOT deleted",
                               bucket_deleted ? "deleted" : "NOT deleted");

  std::string machine_json = bench::json_members(machine);
  std::string lengths_json, rooms_json, results_json;
  for (std::size_t i = 0; i < plan.size(); ++i) {
    lengths_json += fmt::format("{}{}", i ? "," : "", plan[i].length);
    auto const& rf = filled.rooms[i];
    rooms_json += fmt::format(
        "{}{{\"room\":{},\"length\":{},\"events\":{},\"bytes\":{},\"seconds\":{:.3f},\"snapshots\":{},"
        "\"last_snapshot_seq\":{},\"last_snapshot_events\":{},\"snapshot_seconds\":{:.3f}}}",
        i ? "," : "", json_quote(plan[i].name), plan[i].length, rf.events, rf.bytes, rf.seconds, rf.snapshots,
        rf.last_snapshot_seq, rf.last_snapshot_events, rf.snapshot_seconds);
  }
  // The instance's flags, with its port and id as placeholders.
  std::string args_json;
  {
    auto args = std::vector<std::string>{"serve", "--listen", "127.0.0.1:PORT", "--nats-url", s.nats_url,
                                         "--redis-url", s.redis_url, "--stream", s.stream, "--subject-prefix", s.prefix,
                                         "--instance-id", "bench-join-N", "--log-level", "warn", "--instance-timeout",
                                         fmt::format("{}ms", s.instance_timeout.count())};
    for (auto const& a : args) args_json += fmt::format("{}{}", args_json.empty() ? "" : ",", json_quote(a));
  }
  for (auto const& r : results) {
    std::string samples_json;
    for (auto const& sm : r.samples)
      samples_json += fmt::format(
          "{}{{\"repeat\":{},\"instance\":{},\"events_in_room_before\":{},\"ready_ms\":{:.3f},\"connect_ms\":{:.3f},"
          "\"join_ms\":{:.3f},\"leave_ack_ms\":{:.3f},\"stop_ms\":{:.1f},\"joined_seq\":{},"
          "\"replayed_events\":{},\"room_snapshots_written\":{},\"ended\":{},\"instance_output\":{}}}",
          samples_json.empty() ? "" : ",", sm.repeat, json_quote(sm.instance), sm.events_before, sm.ready_ms,
          sm.connect_ms, sm.join_ms, sm.leave_ack_ms, sm.stop_ms, sm.joined_seq, sm.replayed_events, sm.room_snapshots,
          json_quote(sm.ended), json_quote(sm.log_head));
    results_json += fmt::format(
        "{}{{\"length\":{},\"room\":{},\"join_ms\":{},\"first_join_ms\":{:.3f},\"later_join_ms\":{},"
        "\"ready_ms\":{},\"connect_ms\":{},\"samples\":[{}]}}",
        results_json.empty() ? "" : ",", r.room->length, json_quote(r.room->name),
        json_spread(bench::spread_of(r.field(&sample::join_ms))), r.samples.front().join_ms,
        r.later().empty() ? std::string("null") : json_spread(bench::spread_of(r.later())),
        json_spread(bench::spread_of(r.field(&sample::ready_ms))),
        json_spread(bench::spread_of(r.field(&sample::connect_ms))),
        samples_json);
  }
  std::string json = fmt::format(
      "{{\"bench\":\"join\",\"version\":{},\"started_at\":{},\"method\":{},\"machine\":{{{}}},"
      "\"settings\":{{\"nats_url\":{},\"redis_url\":{},\"stream\":{},\"subject_prefix\":{},\"lengths\":[{}],"
      "\"repeats\":{},\"window\":{},\"snapshot_every\":{},\"ready_timeout_ms\":{},\"join_timeout_ms\":{},"
      "\"stop_timeout_ms\":{},"
      "\"serve_bin\":{},\"instance_args\":[{}],\"keep\":{}}},"
      "\"fill\":{{\"events\":{},\"snapshots\":{},\"payload_bytes\":{},\"seconds\":{:.3f},\"events_per_s\":{:.0f},"
      "\"signal_data_bytes\":{{\"min\":{},\"mean\":{},\"max\":{}}},\"rooms\":[{}]}},"
      "\"results\":[{}],\"history_cost_us_per_event\":{:.3f},\"history_cost_first_join_us_per_event\":{:.3f},"
      "\"stream_deleted\":{},\"heartbeat_bucket_deleted\":{}}}\n",
      json_quote(SIGSTREAM_VERSION), json_quote(started_at), json_quote(method_text), machine_json,
      json_quote(s.nats_url), json_quote(s.redis_url), json_quote(s.stream), json_quote(s.prefix), lengths_json,
      s.repeats, s.window, s.snapshot_every, s.ready_timeout.count(), s.join_timeout.count(), s.stop_timeout.count(),
      // The file name only: a report is shared, the machine's paths are not.
      json_quote(std::filesystem::path(bin).filename().string()), args_json, s.keep, filled.events, filled.snapshots,
      filled.bytes, filled.seconds, filled.seconds > 0 ? filled.events / filled.seconds : 0.0,
      filled.signals ? filled.data_min : 0, filled.signals ? filled.data_total / filled.signals : 0, filled.data_max,
      rooms_json, results_json, per_event_us, first_per_event_us, stream_deleted, bucket_deleted);

  if (!bench::deliver_report(text, json, s.report, "sigstream-bench join")) return 1;
  if (!s.report.empty()) std::cerr << "report: " << s.report << "\n";
  return 0;
}

}  // namespace sig::bench
