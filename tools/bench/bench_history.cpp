// `sigstream-bench history`: how `sigstream history` reads at scale. It fills
// a stream of its own (SIGSTREAM-BENCH by default, never the instances' one)
// with many rooms' events interleaved the way real traffic interleaves them,
// then times the history command as a user runs it: a separate process,
// started cold, its stdout a pipe. Two figures matter (issue 4): the time to
// the first line for a room of 1,000 events among 1,000,000, and the replay
// rate of a room of 100,000 events.
//
// Single-threaded apart from nats.c's own threads, which only run the
// publish acknowledgements (they touch nothing but `publish_window`).
#include <filesystem>
#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "adapters/codec/event_codec.hpp"
#include "adapters/nats/event_log.hpp"
#include "bench/bench_common.hpp"
#include "bench/bench_system.hpp"
#include "bench/commands.hpp"
#include "cli/logging.hpp"
#include "cli/options.hpp"
#include "domain/room_name.hpp"
#include "history/formats.hpp"
#include "protocol/messages.hpp"

namespace sig::bench {

using cli::options;
using cli::log_factory;

namespace {

using steady = std::chrono::steady_clock;
using protocol::json_quote;

// The plan is a pure function of the settings and this seed, so a stream
// kept with --keep is recognised by its per-room counts on the next run.
constexpr std::uint64_t plan_seed = 20'261'122;

struct settings {
  std::string nats_url = "nats://127.0.0.1:4222";
  std::string stream = "SIGSTREAM-BENCH";
  std::string prefix = "sigbench";
  std::int64_t rooms = 1000;
  std::int64_t events = 1'000'000;
  std::int64_t big_room_events = 100'000;
  std::int64_t sample_room_events = 1000;
  std::int64_t runs = 5;
  std::string history_bin = product_binary_beside_this_one();
  bool keep = false;
  std::string report;
  std::int64_t window = 4096;
  std::chrono::milliseconds run_timeout{300'000};
  std::int64_t cold_runs = 3;
  std::chrono::milliseconds idle{10'000};
};

// Every count and time has a ceiling, so a run always ends by itself.
std::string check(settings const& s) {
  auto in = [](std::int64_t v, std::int64_t lo, std::int64_t hi) { return v >= lo && v <= hi; };
  if (!bench::is_loopback_nats_url(s.nats_url))
    return "--nats-url must be nats://127.0.0.1[:PORT] or nats://localhost[:PORT]";
  if (s.stream.empty() || s.stream.find_first_of(" .*>\t") != std::string::npos)
    return "--stream must be a stream name (no spaces, dots or wildcards)";
  if (!domain::is_valid_subject_prefix(s.prefix)) return "--subject-prefix must be dotted tokens of [A-Za-z0-9_-]";
  if (!in(s.rooms, 2, 100'000)) return "--rooms must be 2..100000";
  if (!in(s.events, 2, 20'000'000)) return "--events must be 2..20000000";
  if (!in(s.big_room_events, 1, 10'000'000)) return "--big-room-events must be 1..10000000";
  if (!in(s.sample_room_events, 1, 10'000'000)) return "--sample-room-events must be 1..10000000";
  std::int64_t others = s.events - s.big_room_events - s.sample_room_events;
  if (others < 0) return "--events must be at least --big-room-events + --sample-room-events";
  if (s.rooms == 2 && others != 0) return "with --rooms 2, --events must be --big-room-events + --sample-room-events";
  if (s.rooms > 2 && others < 2 * (s.rooms - 2)) return "--events leaves fewer than 2 events for some other room";
  if (!in(s.runs, 1, 50)) return "--runs must be 1..50";
  if (!in(s.window, 1, 65'536)) return "--window must be 1..65536";
  if (s.run_timeout < std::chrono::seconds(1) || s.run_timeout > std::chrono::minutes(30))
    return "--run-timeout must be 1s..30m";
  if (!in(s.cold_runs, 0, 20)) return "--cold-runs must be 0..20";
  if (s.idle < std::chrono::seconds(0) || s.idle > std::chrono::minutes(5)) return "--idle must be 0..5m";
  if (access(s.history_bin.c_str(), X_OK) != 0) return "--history-bin: not an executable file: " + s.history_bin;
  return {};
}

// --- Payloads: what browsers really send (web/negotiation.js shapes). ------

std::string hex(std::mt19937_64& rng, int digits) {
  static constexpr char digit[] = "0123456789abcdef";
  std::string out;
  for (int i = 0; i < digits; ++i) out += digit[rng() & 15];
  return out;
}

std::string token(std::mt19937_64& rng, int length) {
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (int i = 0; i < length; ++i) out += alphabet[rng() & 63];
  return out;
}

std::string fingerprint(std::mt19937_64& rng) {
  std::string out;
  for (int i = 0; i < 32; ++i) out += (i ? ":" : "") + hex(rng, 2);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

// A Chrome-like session description: audio, video (1 to 4 codecs, each
// with its rtx), a data channel. 2 to 4 KB as JSON.
std::string description_json(std::mt19937_64& rng, bool offer) {
  std::string ufrag = token(rng, 4), pwd = token(rng, 24), fp = fingerprint(rng);
  std::string stream = token(rng, 36), audio_track = hex(rng, 32), video_track = hex(rng, 32);
  std::string setup = offer ? "actpass" : "active";
  std::string l;  // lines, joined with the JSON escape of CRLF
  auto line = [&](std::string const& text) { l += text + "\\r\\n"; };
  auto transport = [&](int mid) {
    line("c=IN IP4 0.0.0.0");
    line("a=ice-ufrag:" + ufrag);
    line("a=ice-pwd:" + pwd);
    line("a=ice-options:trickle");
    line("a=fingerprint:sha-256 " + fp);
    line("a=setup:" + setup);
    line(fmt::format("a=mid:{}", mid));
  };
  line("v=0");
  line(fmt::format("o=- {} 2 IN IP4 127.0.0.1", rng() % 9'000'000'000'000'000'000ULL));
  line("s=-");
  line("t=0 0");
  line("a=group:BUNDLE 0 1 2");
  line("a=extmap-allow-mixed");
  line("a=msid-semantic: WMS " + stream);
  line("m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 110");
  transport(0);
  line("a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level");
  line("a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time");
  line("a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01");
  line("a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid");
  line("a=sendrecv");
  line("a=msid:" + stream + " " + audio_track);
  line("a=rtcp-mux");
  line("a=rtpmap:111 opus/48000/2");
  line("a=rtcp-fb:111 transport-cc");
  line("a=fmtp:111 minptime=10;useinbandfec=1");
  line("a=rtpmap:63 red/48000/2");
  line("a=fmtp:63 111/111");
  line("a=rtpmap:9 G722/8000");
  line("a=rtpmap:0 PCMU/8000");
  line("a=rtpmap:8 PCMA/8000");
  line("a=rtpmap:110 telephone-event/48000");
  auto audio_ssrc = rng() % 4'000'000'000ULL;
  std::string cname = token(rng, 16);
  line(fmt::format("a=ssrc:{} cname:{}", audio_ssrc, cname));
  line(fmt::format("a=ssrc:{} msid:{} {}", audio_ssrc, stream, audio_track));

  struct codec { int pt; char const* name; char const* fmtp; };
  static constexpr codec video_codecs[] = {
      {96, "VP8", nullptr},
      {98, "VP9", "profile-id=0"},
      {102, "H264", "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"},
      {45, "AV1", "level-idx=5;profile=0;tier=0"},
  };
  std::size_t count = offer ? 2 + rng() % 3 : 1 + rng() % 2;
  std::string payload_types;
  for (std::size_t i = 0; i < count; ++i)
    payload_types += fmt::format(" {} {}", video_codecs[i].pt, video_codecs[i].pt + 1);
  line("m=video 9 UDP/TLS/RTP/SAVPF" + payload_types);
  transport(1);
  line("a=extmap:14 urn:ietf:params:rtp-hdrext:toffset");
  line("a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time");
  line("a=extmap:13 urn:3gpp:video-orientation");
  line("a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01");
  line("a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid");
  line("a=sendrecv");
  line("a=msid:" + stream + " " + video_track);
  line("a=rtcp-mux");
  line("a=rtcp-rsize");
  for (std::size_t i = 0; i < count; ++i) {
    auto const& c = video_codecs[i];
    line(fmt::format("a=rtpmap:{} {}/90000", c.pt, c.name));
    for (char const* fb : {"goog-remb", "transport-cc", "ccm fir", "nack", "nack pli"})
      line(fmt::format("a=rtcp-fb:{} {}", c.pt, fb));
    if (c.fmtp) line(fmt::format("a=fmtp:{} {}", c.pt, c.fmtp));
    line(fmt::format("a=rtpmap:{} rtx/90000", c.pt + 1));
    line(fmt::format("a=fmtp:{} apt={}", c.pt + 1, c.pt));
  }
  auto video_ssrc = rng() % 4'000'000'000ULL, rtx_ssrc = rng() % 4'000'000'000ULL;
  line(fmt::format("a=ssrc-group:FID {} {}", video_ssrc, rtx_ssrc));
  for (auto ssrc : {video_ssrc, rtx_ssrc}) {
    line(fmt::format("a=ssrc:{} cname:{}", ssrc, cname));
    line(fmt::format("a=ssrc:{} msid:{} {}", ssrc, stream, video_track));
  }
  line("m=application 9 UDP/DTLS/SCTP webrtc-datachannel");
  transport(2);
  line("a=sctp-port:5000");
  line("a=max-message-size:262144");
  return fmt::format("{{\"description\":{{\"type\":\"{}\",\"sdp\":\"{}\"}}}}", offer ? "offer" : "answer", l);
}

// An RTCIceCandidateInit as the browser's toJSON gives it: about 200 bytes.
std::string candidate_json(std::mt19937_64& rng) {
  std::string ufrag = token(rng, 4);
  int mid = static_cast<int>(rng() % 3);
  unsigned port = 40'000 + rng() % 20'000;
  std::string line;
  switch (rng() % 3) {
    case 0:
      line = fmt::format("candidate:{} 1 udp 2122260223 192.168.{}.{} {} typ host generation 0 ufrag {} network-id 1",
                         rng() % 4'000'000'000ULL, rng() % 255, 1 + rng() % 254, port, ufrag);
      break;
    case 1:
      line = fmt::format(
          "candidate:{} 1 udp 1686052607 203.0.113.{} {} typ srflx raddr 192.168.1.{} rport {} generation 0 ufrag {} "
          "network-id 1",
          rng() % 4'000'000'000ULL, 1 + rng() % 254, port, 1 + rng() % 254, port, ufrag);
      break;
    default:
      line = fmt::format("candidate:{} 1 tcp 1518280447 192.168.{}.{} 9 typ host tcptype active generation 0 ufrag {} "
                         "network-id 1",
                         rng() % 4'000'000'000ULL, rng() % 255, 1 + rng() % 254, ufrag);
  }
  return fmt::format(
      "{{\"candidate\":{{\"candidate\":\"{}\",\"sdpMid\":\"{}\",\"sdpMLineIndex\":{},\"usernameFragment\":\"{}\"}}}}",
      line, mid, mid, ufrag);
}

// --- One room's traffic: sessions of 2-4 peers that join, negotiate every
// pair (offer, answer, trickled candidates, renegotiating while the call
// lasts), now and then broadcast app data, and leave. ----------------------

class room_script {
 public:
  room_script(std::string name, std::uint64_t events) : name_(std::move(name)), remaining_(events) {}

  std::string const& name() const { return name_; }

  domain::event next(std::mt19937_64& rng) {
    if (joins_left_ == 0 && signals_left_ == 0 && leaves_left_ == 0) start_session(rng);
    --remaining_;
    domain::event e;
    e.time_ms = bench::wall_ms();
    if (joins_left_ > 0) {
      --joins_left_;
      auto const& p = peers_[joined_++];
      e.instance = instance_of(p);
      e.body = domain::peer_joined{p, fmt::format("{{\"name\":\"{}\",\"device\":\"bench\"}}", p.substr(0, 6))};
    } else if (signals_left_ > 0) {
      --signals_left_;
      e.body = next_signal(rng);
      e.instance = instance_of(std::get<domain::signal_sent>(e.body).from);
    } else {
      --leaves_left_;
      auto const& p = peers_[left_++];
      e.instance = instance_of(p);
      e.body = domain::peer_left{p, rng() % 8 == 0 ? domain::leave_reason::disconnect : domain::leave_reason::leave};
    }
    return e;
  }

 private:
  static std::string instance_of(std::string const& peer) { return fmt::format("i{}", 1 + peer.back() % 3); }

  void start_session(std::mt19937_64& rng) {
    std::size_t k = 2 + rng() % 3;
    std::uint64_t length = 300 + rng() % 1700;
    if (remaining_ < length + 20) length = remaining_;  // the last session takes the rest
    peers_.clear();
    for (std::size_t i = 0; i < k; ++i) peers_.push_back(hex(rng, 12));
    joined_ = left_ = 0;
    if (length >= 2 * k + 1) {
      joins_left_ = leaves_left_ = k;
    } else {
      k = std::min<std::size_t>(k, length);
      joins_left_ = k;
      leaves_left_ = 0;
    }
    signals_left_ = length - joins_left_ - leaves_left_;
    pairs_.clear();
    for (std::size_t i = 0; i < k; ++i)
      for (std::size_t j = i + 1; j < k; ++j) pairs_.emplace_back(i, j);
    pair_ = 0;
    step_ = 0;
  }

  domain::signal_sent next_signal(std::mt19937_64& rng) {
    if (pairs_.empty()) return domain::signal_sent{peers_.front(), std::nullopt, "{\"type\":\"ping\"}"};
    if (rng() % 50 == 0) {
      auto const& from = peers_[rng() % peers_.size()];
      return domain::signal_sent{from, std::nullopt, fmt::format("{{\"app\":\"mute\",\"audio\":{}}}", rng() % 2 == 0)};
    }
    auto [a, b] = pairs_[pair_];
    domain::signal_sent s;
    if (step_ == 0) {
      s = {peers_[a], peers_[b], description_json(rng, true)};
      candidates_ = 4 + static_cast<int>(rng() % 7);
    } else if (step_ == 1) {
      s = {peers_[b], peers_[a], description_json(rng, false)};
    } else {
      bool forward = step_ % 2 == 0;
      s = {forward ? peers_[a] : peers_[b], forward ? peers_[b] : peers_[a], candidate_json(rng)};
    }
    if (++step_ >= 2 + candidates_) {
      step_ = 0;
      pair_ = (pair_ + 1) % pairs_.size();
    }
    return s;
  }

  std::string name_;
  std::uint64_t remaining_;
  std::vector<std::string> peers_;
  std::size_t joined_ = 0, left_ = 0;
  std::uint64_t joins_left_ = 0, signals_left_ = 0, leaves_left_ = 0;
  std::vector<std::pair<std::size_t, std::size_t>> pairs_;
  std::size_t pair_ = 0;
  int step_ = 0, candidates_ = 0;
};

struct room_plan {
  std::string name;
  std::string subject;
  std::uint64_t events = 0;
};

// Room 0 is the big room, room 1 the sample room, the rest share the remainder.
std::vector<room_plan> plan_rooms(settings const& s) {
  std::vector<room_plan> rooms(static_cast<std::size_t>(s.rooms));
  rooms[0].name = "bench-big";
  rooms[0].events = static_cast<std::uint64_t>(s.big_room_events);
  rooms[1].name = "bench-sample";
  rooms[1].events = static_cast<std::uint64_t>(s.sample_room_events);
  std::uint64_t others = static_cast<std::uint64_t>(s.events - s.big_room_events - s.sample_room_events);
  std::uint64_t other_rooms = rooms.size() - 2;
  for (std::size_t i = 2; i < rooms.size(); ++i) {
    rooms[i].name = fmt::format("bench-room-{:05}", i);
    rooms[i].events = others / other_rooms + (i - 2 < others % other_rooms ? 1 : 0);
  }
  for (auto& r : rooms) r.subject = domain::subjects_for(s.prefix, r.name).events;
  return rooms;
}

struct fill_result {
  bool ok = false;
  bool skipped = false;  // the stream held this plan already
  std::uint64_t events = 0, bytes = 0;
  double seconds = 0;
  std::size_t offer_min = SIZE_MAX, offer_max = 0, candidate_min = SIZE_MAX, candidate_max = 0;
  std::uint64_t offer_total = 0, offers = 0, candidate_total = 0, candidates = 0;
  std::string error;
};

// Progress on stderr: a rewritten line on a terminal, a line every 10 s otherwise.
class fill_progress {
 public:
  explicit fill_progress(std::uint64_t total) : total_(total) {}
  void update(std::uint64_t sent, std::uint64_t acked, std::uint64_t bytes, bool final = false) {
    auto now = steady::now();
    auto every = tty_ ? std::chrono::milliseconds(500) : std::chrono::milliseconds(10'000);
    if (!final && now - last_ < every) return;
    last_ = now;
    double s = std::max(1e-9, std::chrono::duration<double>(now - start_).count());
    std::string text = fmt::format("filling: {} of {} events sent, {} acked ({:.0f} events/s, {:.1f} MB/s)", sent,
                                   total_, acked, acked / s, bytes / s / 1e6);
    if (tty_) std::cerr << "\r\033[K" << text << (final ? "\n" : "") << std::flush;
    else std::cerr << text << "\n";
  }

 private:
  std::uint64_t total_;
  bool tty_ = isatty(STDERR_FILENO) == 1;
  steady::time_point start_ = steady::now(), last_ = steady::now();
};

fill_result fill(nats::event_log& log, bench::publish_window& window, std::vector<room_plan> const& plan,
                 std::uint64_t total) {
  fill_result r;
  // One entry per event, shuffled: every room's events spread evenly over
  // the whole stream, so reading one room means skipping everyone else's.
  std::mt19937_64 rng(plan_seed);
  std::vector<std::uint32_t> order;
  order.reserve(total);
  for (std::size_t i = 0; i < plan.size(); ++i) order.insert(order.end(), plan[i].events, static_cast<std::uint32_t>(i));
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<room_script> scripts;
  scripts.reserve(plan.size());
  for (auto const& p : plan) scripts.emplace_back(p.name, p.events);

  std::string run_id = hex(rng, 8) + fmt::format("{:x}", bench::wall_ms());
  fill_progress progress(total);
  auto start = steady::now();
  constexpr auto stall = std::chrono::milliseconds(30'000);
  for (std::uint32_t room : order) {
    if (window.failed() > 0) break;
    if (!window.acquire(stall)) {
      r.error = "no publish acknowledgement for 30 s";
      break;
    }
    domain::event e = scripts[room].next(rng);
    if (auto const* s = std::get_if<domain::signal_sent>(&e.body)) {
      std::size_t size = s->data_json.size();
      if (s->data_json.starts_with("{\"description\"")) {
        r.offer_min = std::min(r.offer_min, size), r.offer_max = std::max(r.offer_max, size);
        r.offer_total += size, ++r.offers;
      } else if (s->data_json.starts_with("{\"candidate\"")) {
        r.candidate_min = std::min(r.candidate_min, size), r.candidate_max = std::max(r.candidate_max, size);
        r.candidate_total += size, ++r.candidates;
      }
    }
    std::string payload = codec::encode_event(plan[room].name, e);
    r.bytes += payload.size();
    log.append(plan[room].subject, std::move(payload), fmt::format("{}-{}", run_id, r.events),
               [&window](nats::append_result result) { window.done(result); });
    ++r.events;
    progress.update(r.events, window.acked(), r.bytes);
  }
  if (!window.drain(stall) && r.error.empty()) r.error = "publishes still unacknowledged 30 s after the last one";
  r.seconds = bench::seconds_since(start);
  progress.update(r.events, window.acked(), r.bytes, true);
  if (window.failed() > 0) r.error = fmt::format("{} publishes failed (first: {})", window.failed(), window.first_error());
  else if (r.error.empty() && window.acked() != total)
    r.error = fmt::format("{} of {} publishes acknowledged", window.acked(), total);
  r.ok = r.error.empty();
  return r;
}

bool matches_plan(std::map<std::string, std::uint64_t> const& counts, std::vector<room_plan> const& plan) {
  if (counts.size() != plan.size()) return false;
  for (auto const& p : plan) {
    auto it = counts.find(p.subject);
    if (it == counts.end() || it->second != p.events) return false;
  }
  return true;
}

// --- Timing the history command as a separate process. ---------------------

struct child_run {
  bool ok = false;  // exited 0 within the time limit
  std::string error;
  int exit_code = -1;
  double first_line_s = -1, second_line_s = -1, last_line_s = -1, eof_s = -1;
  std::uint64_t lines = 0, bytes = 0;
  std::string stderr_text;  // the first 4 KiB
};

// Starts `argv` with stdout and stderr on pipes and stdin on /dev/null, and
// times from just before the spawn to the first, second and last complete
// line on stdout and to its end (the process's exit). Bounded by `limit`; a child past it is killed.
child_run run_child(std::vector<std::string> const& args, std::chrono::milliseconds limit) {
  child_run r;
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0) {
    r.error = std::string("pipe: ") + std::strerror(errno);
    return r;
  }
  if (pipe2(err, O_CLOEXEC) != 0) {
    r.error = std::string("pipe: ") + std::strerror(errno);
    close(out[0]), close(out[1]);
    return r;
  }
  auto child = bench::spawn_child(args, {out[1], err[1], {}}, bench::child_environment::inherited);
  close(out[1]), close(err[1]);
  if (child.pid == 0) {
    r.error = child.error;
    close(out[0]), close(err[0]);
    return r;
  }
  pid_t pid = child.pid;
  auto start = child.started;

  auto deadline = start + limit;
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  bool out_open = true, err_open = true, timed_out = false;
  std::vector<char> buffer(1 << 16);
  while (out_open || err_open) {
    if (steady::now() >= deadline) {
      timed_out = true;
      break;
    }
    fds[0].fd = out_open ? out[0] : -1;
    fds[1].fd = err_open ? err[0] : -1;
    int ready = poll(fds, 2, 100);
    if (ready < 0 && errno != EINTR) {
      r.error = std::string("poll: ") + std::strerror(errno);
      break;
    }
    if (ready <= 0) continue;
    if (out_open && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t n = read(out[0], buffer.data(), buffer.size());
      if (n > 0) {
        std::uint64_t before = r.lines;
        r.lines += static_cast<std::uint64_t>(std::count(buffer.data(), buffer.data() + n, '\n'));
        r.bytes += static_cast<std::uint64_t>(n);
        if (before == 0 && r.lines >= 1) r.first_line_s = bench::seconds_since(start);
        if (before <= 1 && r.lines >= 2) r.second_line_s = bench::seconds_since(start);
        if (r.lines > before) r.last_line_s = bench::seconds_since(start);  // the output is complete at the last one
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        out_open = false;
        r.eof_s = bench::seconds_since(start);
      }
    }
    if (err_open && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t n = read(err[0], buffer.data(), buffer.size());
      if (n > 0) {
        if (r.stderr_text.size() < 4096) r.stderr_text.append(buffer.data(), static_cast<std::size_t>(n));
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        err_open = false;
      }
    }
  }
  close(out[0]), close(err[0]);
  if (timed_out) kill(pid, SIGKILL);  // our own child, by its pid
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (timed_out) r.error = fmt::format("killed after {} ms", limit.count());
  else if (r.error.empty() && r.exit_code != 0)
    r.error = fmt::format("exit code {}: {}", r.exit_code, r.stderr_text.substr(0, 300));
  r.ok = r.error.empty();
  return r;
}

// One room read `runs` times in one format.
struct room_runs {
  std::string room, format;
  std::uint64_t expected_lines = 0;
  std::vector<child_run> runs;

  std::vector<double> field(double child_run::*member) const {
    std::vector<double> out;
    for (auto const& r : runs) out.push_back(r.*member);
    return out;
  }
  std::vector<double> rate_total() const {  // events / (spawn to EOF)
    std::vector<double> out;
    for (auto const& r : runs) out.push_back(r.eof_s > 0 ? static_cast<double>(events(r)) / r.eof_s : 0);
    return out;
  }
  std::vector<double> rate_after_first() const {  // events / (first line to EOF)
    std::vector<double> out;
    for (auto const& r : runs) {
      double span = r.eof_s - r.first_line_s;
      out.push_back(span > 0 ? static_cast<double>(events(r)) / span : 0);
    }
    return out;
  }
  // events / (spawn to the last line): the output is complete then; what
  // follows until EOF is the process exiting.
  std::vector<double> rate_to_last_line() const {
    std::vector<double> out;
    for (auto const& r : runs) out.push_back(r.last_line_s > 0 ? static_cast<double>(events(r)) / r.last_line_s : 0);
    return out;
  }
  std::uint64_t events(child_run const& r) const { return format == "table" && r.lines > 0 ? r.lines - 1 : r.lines; }
  bool all_ok() const {
    for (auto const& r : runs)
      if (!r.ok || r.lines != expected_lines) return false;
    return !runs.empty();
  }
};

// One run of `history ROOM --format FORMAT`, reported on stderr as it ends.
child_run time_history(settings const& s, std::string const& bin, room_plan const& room, std::string const& format,
                       std::string_view label, std::vector<std::string> const& extra = {}) {
  std::vector<std::string> args{bin,      "history",          room.name, "--nats-url", s.nats_url, "--stream",
                                s.stream, "--subject-prefix", s.prefix,  "--format",   format};
  args.insert(args.end(), extra.begin(), extra.end());
  auto r = run_child(args, s.run_timeout);
  std::cerr << fmt::format("  {} {} ({}): first line {:.3f} s, last line {:.3f} s, EOF {:.3f} s, {} lines{}\n",
                           room.name, format, label, r.first_line_s, r.last_line_s, r.eof_s, r.lines,
                           r.ok ? "" : " FAILED: " + r.error);
  return r;
}

// A single run, as a set of one.
room_runs run_once(settings const& s, std::string const& bin, room_plan const& room, std::string const& format,
                   std::vector<std::string> const& extra = {}) {
  room_runs out{room.name, format, room.events + (format == "table" ? 1 : 0), {}};
  out.runs.push_back(time_history(s, bin, room, format, "once", extra));
  return out;
}

// In-process reads of the big room, each once: where the CLI's time goes.
struct diagnostic {
  std::string what;
  std::uint64_t events = 0;
  double seconds = 0;
  bool ok = false;
};

diagnostic in_process_read(nats::event_log& log, room_plan const& room, std::string what, int depth) {
  diagnostic d;
  d.what = std::move(what);
  std::atomic<bool> never{false};
  std::uint64_t sink = 0;
  auto start = steady::now();
  auto end = log.scan(room.subject, nats::scan_start{}, false, never, [&](nats::stored_message&& m) {
    ++d.events;
    if (depth >= 1) {
      auto decoded = codec::decode_event(m.payload, m.seq);
      if (decoded && depth >= 2) sink += history::jsonl_record(room.name, decoded->event, false).size();
      else if (decoded) sink += decoded->event.seq;
    }
    return true;
  });
  d.seconds = bench::seconds_since(start);
  d.ok = end == nats::scan_end::caught_up && d.events == room.events && (depth == 0 || sink > 0);
  return d;
}

// --- Report. -----------------------------------------------------------------

std::string json_spread(bench::spread const& s) {
  return fmt::format("{{\"min\":{:.6f},\"median\":{:.6f},\"max\":{:.6f}}}", s.min, s.median, s.max);
}

std::string json_runs(room_runs const& r) {
  std::string runs;
  for (auto const& c : r.runs)
    runs += fmt::format("{}{{\"ok\":{},\"first_line_s\":{:.6f},\"second_line_s\":{:.6f},\"last_line_s\":{:.6f},"
                        "\"eof_s\":{:.6f},\"lines\":{},\"bytes\":{}{}}}",
                        runs.empty() ? "" : ",", c.ok, c.first_line_s, c.second_line_s, c.last_line_s, c.eof_s, c.lines,
                        c.bytes, c.ok ? "" : ",\"error\":" + json_quote(c.error));
  return fmt::format(
      "{{\"room\":{},\"format\":{},\"expected_lines\":{},\"all_ok\":{},\"first_line_s\":{},\"second_line_s\":{},"
      "\"last_line_s\":{},\"eof_s\":{},\"events_per_s\":{},\"events_per_s_after_first_line\":{},"
      "\"events_per_s_to_last_line\":{},\"runs\":[{}]}}",
      json_quote(r.room), json_quote(r.format), r.expected_lines, r.all_ok(),
      json_spread(bench::spread_of(r.field(&child_run::first_line_s))),
      json_spread(bench::spread_of(r.field(&child_run::second_line_s))),
      json_spread(bench::spread_of(r.field(&child_run::last_line_s))),
      json_spread(bench::spread_of(r.field(&child_run::eof_s))),
      json_spread(bench::spread_of(r.rate_total())), json_spread(bench::spread_of(r.rate_after_first())),
      json_spread(bench::spread_of(r.rate_to_last_line())), runs);
}

}  // namespace

int history_bench_command(int argc, char** argv) {
  settings s;
  options opts("history",
               "Measure `sigstream history` at scale. Fills a stream of its own (--stream, default SIGSTREAM-BENCH,\n"
               "never the instances' stream) with --events events of --rooms rooms, interleaved as real traffic is\n"
               "(joins of 2-4 peers, SDP offers and answers of 2-4 KB, ICE candidates of ~200 B), then runs\n"
               "`history` as a separate process, its stdout a pipe, --runs times on the sample room (time to the\n"
               "first line) and on the big room (events/s to the end). The stream is deleted at the end unless\n"
               "--keep; a kept stream holding exactly this plan is reused without filling, and a stream holding\n"
               "anything else is never touched. NATS on loopback only. Summary on stdout, progress on stderr.",
               "sigstream-bench");
  opts.add_string("nats-url", &s.nats_url, "NATS server (loopback only).");
  opts.add_string("stream", &s.stream, "The benchmark's own stream (created, filled, deleted).");
  opts.add_string("subject-prefix", &s.prefix, "Subject prefix of the benchmark's rooms.");
  opts.add_int("rooms", &s.rooms, "Rooms in the stream, the big and the sample room included.");
  opts.add_int("events", &s.events, "Events in the stream in all, the big and the sample room's included.");
  opts.add_int("big-room-events", &s.big_room_events, "Events of the big room (bench-big), read for the replay rate.");
  opts.add_int("sample-room-events", &s.sample_room_events,
               "Events of the sample room (bench-sample), read for the time to the first line.");
  opts.add_int("runs", &s.runs, "How many times each room is read (1..50).");
  opts.add_string("history-bin", &s.history_bin, "The sigstream executable to time (default: `sigstream` beside this executable).");
  opts.add_flag("keep", &s.keep, "Keep the stream at the end (a later run with the same plan skips filling).");
  opts.add_string("report", &s.report, "Write the JSON report to this file (without it, it follows the summary on stdout).");
  opts.add_int("window", &s.window, "Publishes in flight while filling.");
  opts.add_duration("run-timeout", &s.run_timeout, "Bound on each history run; past it the process is killed.");
  opts.add_int("cold-runs", &s.cold_runs,
               "After the warm runs, read each room this many times more, each after --idle without reads (0..20).");
  opts.add_duration("idle", &s.idle,
                    "Pause before each cold run: nats-server drops its block caches after a few seconds idle.");
  opts.command_line_only({"stream", "subject-prefix", "rooms", "events", "big-room-events", "sample-room-events", "runs",
                          "history-bin", "keep", "report", "window", "run-timeout", "cold-runs", "idle"});
  if (auto done = opts.parse_or_exit(argc, argv)) return *done;
  if (auto problem = check(s); !problem.empty()) {
    std::cerr << "sigstream-bench history: " << problem << "\n";
    return 2;
  }
  std::string started_at = bench::utc_now();
  std::string load_at_start = bench::load_average();
  std::string bin = bench::resolved_path(s.history_bin);
  auto plan = plan_rooms(s);
  auto total = static_cast<std::uint64_t>(s.events);

  // The window outlives the log: acknowledgement callbacks point at it.
  bench::publish_window window(static_cast<std::uint64_t>(s.window));
  log_factory logs("bench-history", "warn");
  nats::event_log log(bench::fill_log_settings(s.nats_url, s.stream, s.prefix, "sigstream-bench history"),
                      logs.make("nats"));
  // Never fill, use or delete a stream holding anything but this plan.
  auto counts = bench::open_stream(log, "sigstream-bench history", s.nats_url, s.stream, s.prefix);
  if (!counts) return 1;
  fill_result filled;
  if (matches_plan(*counts, plan)) {
    filled.ok = filled.skipped = true;
    filled.events = total;
    std::cerr << fmt::format("stream {} already holds this plan ({} events): not filling\n", s.stream, total);
  } else if (!counts->empty()) {
    std::uint64_t held = 0;
    for (auto const& [subject, n] : *counts) held += n;
    std::cerr << fmt::format(
        "sigstream-bench history: stream {} holds {} events on {} subjects that are not this benchmark's plan; "
        "not touching it (delete it, or choose another --stream)\n",
        s.stream, held, counts->size());
    return 1;
  } else {
    std::cerr << fmt::format("filling stream {} at {}: {} events in {} rooms\n", s.stream, s.nats_url, total,
                             plan.size());
    filled = fill(log, window, plan, total);
    if (!filled.ok) {
      std::cerr << "sigstream-bench history: fill failed: " << filled.error << "\n";
      if (!s.keep) log.delete_stream();
      return 1;
    }
    counts = bench::stream_counts(log, s.prefix);
    if (!counts || !matches_plan(*counts, plan)) {
      std::cerr << "sigstream-bench history: after the fill, the stream's per-room counts differ from the plan\n";
      if (!s.keep) log.delete_stream();
      return 1;
    }
  }

  auto const& big = plan[0];
  auto const& sample = plan[1];
  std::cerr << fmt::format("timing `{} history`: {} warm runs of each room, then {} after {} s idle\n", bin, s.runs,
                           s.cold_runs, s.idle.count() / 1000);
  // Warm: back to back, interleaved so a drift of the machine touches both
  // rooms alike. The server's block caches stay loaded between runs.
  room_runs sample_warm{sample.name, "jsonl", sample.events, {}}, big_warm{big.name, "jsonl", big.events, {}};
  for (std::int64_t i = 0; i < s.runs; ++i) {
    auto label = fmt::format("warm {}/{}", i + 1, s.runs);
    sample_warm.runs.push_back(time_history(s, bin, sample, "jsonl", label));
    big_warm.runs.push_back(time_history(s, bin, big, "jsonl", label));
  }
  // Cold: after --idle without reads nats-server has dropped its block
  // caches, as it has when an operator runs `history` once.
  room_runs sample_cold{sample.name, "jsonl", sample.events, {}}, big_cold{big.name, "jsonl", big.events, {}};
  for (std::int64_t i = 0; i < s.cold_runs; ++i) {
    auto label = fmt::format("after idle {}/{}", i + 1, s.cold_runs);
    std::this_thread::sleep_for(s.idle);
    sample_cold.runs.push_back(time_history(s, bin, sample, "jsonl", label));
    std::this_thread::sleep_for(s.idle);
    big_cold.runs.push_back(time_history(s, bin, big, "jsonl", label));
  }
  auto sample_table = run_once(s, bin, sample, "table");
  auto big_table = run_once(s, bin, big, "table");
  // Decode and fold every event, print none: the CLI without its formatting.
  auto big_decode_only = run_once(s, bin, big, "jsonl", {"--kind", "leave"});
  big_decode_only.expected_lines = big_decode_only.runs.front().lines;  // the leaves, whatever their number

  std::cerr << "in-process reads of the big room\n";
  std::vector<diagnostic> diagnostics{
      in_process_read(log, big, "scan only (ordered consumer, no decode)", 0),
      in_process_read(log, big, "scan + protobuf decode", 1),
      in_process_read(log, big, "scan + decode + jsonl_record", 2),
  };

  bool deleted = false;
  if (!s.keep) deleted = log.delete_stream();
  log.close();

  // --- Verdicts and the report.
  struct verdict {
    double first_line_max = 0, replay_median = 0;
    bool runs_ok = false, first_line_met = false, replay_met = false;
  };
  auto judge = [](room_runs const& sample_runs, room_runs const& big_runs) {
    verdict v;
    v.runs_ok = sample_runs.all_ok() && big_runs.all_ok();
    v.first_line_max = bench::spread_of(sample_runs.field(&child_run::first_line_s)).max;
    v.replay_median = bench::spread_of(big_runs.rate_total()).median;
    v.first_line_met = v.runs_ok && v.first_line_max < 1.0;
    v.replay_met = v.runs_ok && v.replay_median >= 100'000;
    return v;
  };
  verdict warm = judge(sample_warm, big_warm);
  verdict cold = s.cold_runs > 0 ? judge(sample_cold, big_cold) : warm;

  auto machine = bench::machine_with_load(load_at_start);
  std::string text;
  text += fmt::format("sigstream-bench history {} ({})\n", SIGSTREAM_VERSION, started_at);
  text += bench::machine_line(machine);
  text += fmt::format("stream {} at {}: {} events in {} rooms; big room {} ({} events), sample room {} ({} events)\n",
                      s.stream, s.nats_url, total, plan.size(), big.name, big.events, sample.name, sample.events);
  if (filled.skipped) {
    text += "fill: skipped (the stream already held this plan)\n";
  } else {
    text += fmt::format("fill: {} events, {:.1f} MB of stored payload, in {:.1f} s = {:.0f} events/s ({} in flight)\n",
                        filled.events, filled.bytes / 1e6, filled.seconds, filled.events / filled.seconds, s.window);
    if (filled.offers > 0 && filled.candidates > 0)
      text += fmt::format("      SDP offer/answer data {}..{} B (mean {}), candidates {}..{} B (mean {})\n",
                          filled.offer_min, filled.offer_max, filled.offer_total / filled.offers, filled.candidate_min,
                          filled.candidate_max, filled.candidate_total / filled.candidates);
  }
  text += fmt::format("history: {} history ROOM --format F, stdout a pipe; times from spawn; 'last line' is when the "
                      "output was complete, 'end' when the process closed it (exited)\n",
                      bin);
  auto row = [](std::string const& what, std::vector<double> const& values, char const* unit, int decimals) {
    auto sp = bench::spread_of(values);
    return fmt::format("  {:<46} {:>11.{}f} {:>11.{}f} {:>11.{}f}  {}\n", what, sp.min, decimals, sp.median, decimals,
                       sp.max, decimals, unit);
  };
  auto block = [&](char const* title, room_runs const& sample_runs, room_runs const& big_runs) {
    std::string out = fmt::format("  {:<46} {:>11} {:>11} {:>11}\n", title, "min", "median", "max");
    if (sample_runs.runs.empty()) return out;
    out += row("sample room: first line", sample_runs.field(&child_run::first_line_s), "s", 3);
    out += row("sample room: last line", sample_runs.field(&child_run::last_line_s), "s", 3);
    out += row(fmt::format("sample room: end ({} lines)", sample_runs.runs.front().lines),
               sample_runs.field(&child_run::eof_s), "s", 3);
    out += row("big room: first line", big_runs.field(&child_run::first_line_s), "s", 3);
    out += row("big room: last line", big_runs.field(&child_run::last_line_s), "s", 3);
    out += row(fmt::format("big room: end ({} lines)", big_runs.runs.front().lines), big_runs.field(&child_run::eof_s),
               "s", 3);
    out += row("big room: events/s, spawn to end", big_runs.rate_total(), "events/s", 0);
    out += row("big room: events/s, first line to end", big_runs.rate_after_first(), "events/s", 0);
    out += row("big room: events/s, spawn to last line", big_runs.rate_to_last_line(), "events/s", 0);
    return out;
  };
  text += block(fmt::format("jsonl, warm, {} runs", s.runs).c_str(), sample_warm, big_warm);
  if (s.cold_runs > 0)
    text += block(fmt::format("jsonl, after {} s idle, {} runs", s.idle.count() / 1000, s.cold_runs).c_str(),
                  sample_cold, big_cold);
  auto once = [&](std::string const& what, room_runs const& r) {
    auto const& c = r.runs.front();
    double rate = c.eof_s > 0 ? r.events(c) / c.eof_s : 0;
    return fmt::format("  {:<46} first line {:.3f} s, last {:.3f} s, end {:.3f} s, {} lines, {:.0f} events/s{}\n", what,
                       c.first_line_s, c.last_line_s, c.eof_s, c.lines, rate, c.ok ? "" : " FAILED: " + c.error);
  };
  text += "  once each (warm):\n";
  text += once("sample room, --format table", sample_table);
  text += once("big room, --format table", big_table);
  {
    auto const& c = big_decode_only.runs.front();
    text += fmt::format("  {:<46} last line {:.3f} s, end {:.3f} s = {:.0f} events/s decoded and folded ({} leaves "
                        "printed){}\n",
                        "big room, --kind leave (no formatting)", c.last_line_s, c.eof_s,
                        c.eof_s > 0 ? big.events / c.eof_s : 0, c.lines, c.ok ? "" : " FAILED: " + c.error);
  }
  text += "  in-process reads of the big room (this process's own connection, no process start):\n";
  for (auto const& d : diagnostics)
    text += fmt::format("  {:<46} {} events in {:.3f} s = {:.0f} events/s{}\n", d.what, d.events, d.seconds,
                        d.seconds > 0 ? d.events / d.seconds : 0, d.ok ? "" : " (incomplete)");
  auto verdict_lines = [&](char const* when, verdict const& v, std::int64_t runs) {
    return fmt::format(
        "target ({}): sample room's first line < 1 s, max of {} runs: {:.3f} s: {}\n"
        "target ({}): big room replay >= 100,000 events/s, median spawn to end: {:.0f}/s: {}\n",
        when, runs, v.first_line_max, v.first_line_met ? "MET" : "MISSED", when, v.replay_median,
        v.replay_met ? "MET" : "MISSED");
  };
  text += verdict_lines("warm", warm, s.runs);
  if (s.cold_runs > 0) text += verdict_lines("after idle", cold, s.cold_runs);
  if (!warm.runs_ok || !cold.runs_ok)
    text += "warning: some runs failed or printed another number of lines than the room holds\n";
  text += s.keep ? fmt::format("stream {} kept\n", s.stream)
                 : fmt::format("stream {} {}\n", s.stream, deleted ? "deleted" : "NOT deleted (see the log)");

  std::string machine_json = bench::json_members(machine);
  std::string diagnostics_json;
  for (auto const& d : diagnostics)
    diagnostics_json += fmt::format("{}{{\"what\":{},\"events\":{},\"seconds\":{:.6f},\"events_per_s\":{:.0f},\"ok\":{}}}",
                                    diagnostics_json.empty() ? "" : ",", json_quote(d.what), d.events, d.seconds,
                                    d.seconds > 0 ? d.events / d.seconds : 0, d.ok);
  auto verdict_json = [](verdict const& v) {
    return fmt::format("{{\"runs_ok\":{},\"first_line_under_1s\":{{\"measured_max_s\":{:.6f},\"met\":{}}},"
                       "\"big_room_replay_100k_per_s\":{{\"measured_median\":{:.0f},\"met\":{}}}}}",
                       v.runs_ok, v.first_line_max, v.first_line_met, v.replay_median, v.replay_met);
  };
  std::string json = fmt::format(
      "{{\"bench\":\"history\",\"version\":{},\"started_at\":{},\"machine\":{{{}}},"
      "\"settings\":{{\"nats_url\":{},\"stream\":{},\"subject_prefix\":{},\"rooms\":{},\"events\":{},"
      "\"big_room_events\":{},\"sample_room_events\":{},\"runs\":{},\"cold_runs\":{},\"idle_s\":{},"
      "\"history_bin\":{},\"window\":{},\"keep\":{}}},"
      "\"fill\":{{\"skipped\":{},\"events\":{},\"payload_bytes\":{},\"seconds\":{:.3f},\"events_per_s\":{:.0f},"
      "\"description_bytes\":{{\"min\":{},\"mean\":{},\"max\":{}}},\"candidate_bytes\":{{\"min\":{},\"mean\":{},"
      "\"max\":{}}}}},"
      "\"warm\":{{\"sample_room\":{},\"big_room\":{}}},\"after_idle\":{{\"sample_room\":{},\"big_room\":{}}},"
      "\"sample_room_table\":{},\"big_room_table\":{},\"big_room_decode_only\":{},\"in_process\":[{}],"
      "\"targets\":{{\"warm\":{},\"after_idle\":{}}},\"stream_deleted\":{}}}\n",
      json_quote(SIGSTREAM_VERSION), json_quote(started_at), machine_json, json_quote(s.nats_url), json_quote(s.stream),
      json_quote(s.prefix), s.rooms, s.events, s.big_room_events, s.sample_room_events, s.runs, s.cold_runs,
      // The file name only: a report is shared, the machine's paths are not.
      s.idle.count() / 1000.0, json_quote(std::filesystem::path(bin).filename().string()), s.window, s.keep, filled.skipped, filled.events, filled.bytes,
      filled.seconds, filled.seconds > 0 ? filled.events / filled.seconds : 0, filled.offers ? filled.offer_min : 0,
      filled.offers ? filled.offer_total / filled.offers : 0, filled.offer_max,
      filled.candidates ? filled.candidate_min : 0, filled.candidates ? filled.candidate_total / filled.candidates : 0,
      filled.candidate_max, json_runs(sample_warm), json_runs(big_warm), json_runs(sample_cold), json_runs(big_cold),
      json_runs(sample_table), json_runs(big_table), json_runs(big_decode_only), diagnostics_json,
      verdict_json(warm), s.cold_runs > 0 ? verdict_json(cold) : "null", deleted);

  if (!bench::deliver_report(text, json, s.report, "sigstream-bench history")) return 1;
  return warm.runs_ok && cold.runs_ok ? 0 : 1;
}

}  // namespace sig::bench
