// Real ws_sessions over Beast's in-memory test stream, with a real room over
// the in-memory event store: the opening handshake (and a refusal),
// requests and replies between two clients, messages cut into single
// bytes, a server that can write only one byte at a time, the close
// handshake, the size limit, the join deadline, a lost connection, and, in
// the style of Beast's own tests, a failure injected at every operation of
// the server's end in turn (fail_count) until a whole run goes through.
#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/address_v4.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/_experimental/test/fail_count.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <array>
#include <cstdint>
#include <limits>
#include <ostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "client_frames.hpp"
#include "room_instance.hpp"
#include "server/connection_context.hpp"
#include "server/ws_session.hpp"
#include "test_byte_stream.hpp"

namespace {

using sig::test::field;

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using sig::test::client_frame;
using sig::test::close_payload;

constexpr std::uint8_t text_op = 0x1, close_op = 0x8, ping_op = 0x9, pong_op = 0xA;

// A frame as the server wrote it.
struct server_frame {
  std::uint8_t op = 0;
  bool fin = false;
  bool masked = false;
  std::string payload;
  std::uint16_t close_code() const {
    if (payload.size() < 2) return 1005;
    auto byte = [&](std::size_t i) { return static_cast<unsigned char>(payload[i]); };
    return static_cast<std::uint16_t>(byte(0) << 8 | byte(1));
  }
};

// The client's end of a connection, as a browser would use it: masked
// frames out; in, the server's bytes kept whole, read as they come.
class ws_client {
 public:
  explicit ws_client(asio::io_context& io) : stream(io) {}

  void start_reading() {
    stream.async_read_some(asio::buffer(chunk_), [this](boost::system::error_code ec, std::size_t bytes) {
      received_.append(chunk_.data(), bytes);
      if (ec) {
        ended_ = true;
        return;
      }
      start_reading();
    });
  }
  // A write to a server already gone fails; a client sees that as the
  // connection's end, which its reads report.
  void send(std::string const& bytes) {
    boost::system::error_code ignored;
    asio::write(stream, asio::buffer(bytes), ignored);
  }
  void send_text(std::string const& json) { send(client_frame(text_op, json)); }

  std::string const& received() const { return received_; }
  bool upgraded() const { return received_.find("\r\n\r\n") != std::string::npos; }
  std::string http_answer() const { return received_.substr(0, received_.find("\r\n\r\n") + 4); }
  // The whole frames after the HTTP answer.
  std::vector<server_frame> frames() const {
    std::vector<server_frame> out;
    if (!upgraded()) return out;
    std::size_t at = received_.find("\r\n\r\n") + 4;
    auto byte = [&](std::size_t i) { return static_cast<unsigned char>(received_[i]); };
    while (received_.size() - at >= 2) {
      server_frame frame;
      frame.fin = (byte(at) & 0x80) != 0;
      frame.op = byte(at) & 0x0F;
      frame.masked = (byte(at + 1) & 0x80) != 0;
      std::uint64_t size = byte(at + 1) & 0x7F;
      std::size_t header = 2;
      std::size_t length_bytes = size == 126 ? 2 : size == 127 ? 8 : 0;
      if (received_.size() - at < header + length_bytes) break;
      if (length_bytes > 0) {
        size = 0;
        for (std::size_t i = 0; i < length_bytes; ++i) size = size << 8 | byte(at + 2 + i);
        header += length_bytes;
      }
      if (received_.size() - at - header < size) break;
      frame.payload = received_.substr(at + header, size);
      out.push_back(std::move(frame));
      at += header + size;
    }
    return out;
  }
  // Text frames whose "type" is `type`.
  std::vector<std::string> of_type(std::string const& type) const {
    std::vector<std::string> out;
    for (auto const& frame : frames())
      if (frame.op == text_op && frame.payload.find("\"type\":\"" + type + "\"") != std::string::npos)
        out.push_back(frame.payload);
    return out;
  }
  std::optional<server_frame> close_frame() const {
    for (auto const& frame : frames())
      if (frame.op == close_op) return frame;
    return std::nullopt;
  }
  // The server ended the connection (its FIN, or a close).
  bool ended() const { return ended_; }

  beast::test::stream stream;

 private:
  std::array<char, 4096> chunk_{};
  std::string received_;
  bool ended_ = false;
};

// One client connection: the server's end (under the session) and the
// client's, connected.
struct connection {
  connection(asio::io_context& io, beast::test::fail_count* fail)
      : server_end(fail != nullptr ? beast::test::stream(io, *fail) : beast::test::stream(io)), client(io) {
    server_end.connect(client.stream);
    client.start_reading();
  }
  bool session_ended() const { return session.expired(); }
  // Operations started on the server's end: each is one step of a fail_count.
  std::size_t server_operations() const { return server_end.nread() + server_end.nwrite(); }

  beast::test::stream server_end;
  ws_client client;
  std::weak_ptr<sig::server::ws_session> session;
  sig::test::test_byte_stream* stream = nullptr;  // the session's, while it lives
};

http::request<http::string_body> upgrade_request() {
  http::request<http::string_body> request{http::verb::get, "/ws", 11};
  request.set(http::field::host, "localhost");
  request.set(http::field::upgrade, "websocket");
  request.set(http::field::connection, "Upgrade");
  request.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");  // RFC 6455 section 1.3's example
  request.set(http::field::sec_websocket_version, "13");
  return request;
}

// One instance: its rooms over a memory store, and the connections to it.
// Resume is on, so that a lost connection (the peer kept for a resume) and
// a closed one (its leave recorded at once) can be told apart.
class test_server {
 public:
  explicit test_server(sig::server::connection_limits limits = {})
      : ctx{.directory = rooms.directory,
            .counters = rooms.counters,
            .logger = rooms.ctx.logger,
            .instance_id = "i1",
            .limits = std::move(limits),
            .ready = [] { return true; },
            .resume_secret = resume_secret} {
    rooms.ctx.resume_secret = resume_secret;
  }
  // Every session ends before the loop, rooms and streams it uses go.
  ~test_server() {
    for (auto& c : connections_) c->client.stream.close();
    bool all_ended = run_until([&] {
      for (auto& c : connections_)
        if (!c->session_ended()) return false;
      return true;
    });
    CHECK(all_ended);
  }

  // A connection whose server end fails at the fail_count's operation.
  connection& connect(beast::test::fail_count* fail = nullptr) {
    connections_.push_back(std::make_unique<connection>(io, fail));
    return *connections_.back();
  }
  void start(connection& c, http::request<http::string_body> upgrade = upgrade_request()) {
    auto remote = asio::ip::tcp::endpoint(asio::ip::make_address_v4("192.0.2.1"),
                                          static_cast<unsigned short>(40000 + connections_.size()));
    auto stream = std::make_unique<sig::test::test_byte_stream>(c.server_end, c.client.stream, remote);
    c.stream = stream.get();
    auto session = std::make_shared<sig::server::ws_session>(std::move(stream), ctx);
    c.session = session;
    session->run(std::move(upgrade));
  }
  // Upgraded and joined to room "r"; returns its peer id.
  std::string join(connection& c) {
    REQUIRE(run_until([&] { return c.client.upgraded(); }));
    c.client.send_text(R"({"type":"join","room":"r","id":1})");
    REQUIRE(run_until([&] { return !c.client.of_type("joined").empty(); }));
    return field(c.client.of_type("joined").front(), "peer");
  }
  // Two connections started, then joined to room "r" in turn. `before_start`
  // may set up their streams first (read or write sizes).
  struct joined_pair {
    connection& a;
    connection& b;
    std::string a_peer;
    std::string b_peer;
  };
  joined_pair two_joined(std::function<void(connection& a, connection& b)> const& before_start = {}) {
    auto& a = connect();
    auto& b = connect();
    if (before_start) before_start(a, b);
    start(a);
    start(b);
    auto a_peer = join(a);
    auto b_peer = join(b);
    return {a, b, std::move(a_peer), std::move(b_peer)};
  }
  bool run_until(std::function<bool()> const& done) { return sig::test::run_until(io, done); }
  // Runs the loop for a while: for what must not happen.
  void run_for(std::chrono::milliseconds how_long) {
    io.restart();
    io.run_for(how_long);
  }

  static constexpr char const* resume_secret = "ws-session-test-resume-secret-0123456789";
  sig::test::memory_event_store store;
  asio::io_context io;
  sig::test::room_instance rooms{io, store, "i1"};
  sig::server::connection_context ctx;

 private:
  std::vector<std::unique_ptr<connection>> connections_;
};

std::string signal_to(std::string const& peer, int n) {
  return R"({"type":"signal","to":")" + peer + R"(","data":{"n":)" + std::to_string(n) + R"(},"id":)" +
         std::to_string(100 + n) + "}";
}

}  // namespace

TEST_CASE("ws_session: the handshake, then a join and a signal between two sessions", "[ws_session]") {
  test_server server;
  auto& a = server.connect();
  auto& b = server.connect();
  server.start(a);
  server.start(b);
  REQUIRE(server.run_until([&] { return a.client.upgraded(); }));
  auto answer = a.client.http_answer();
  CHECK(answer.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
  CHECK(answer.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n") != std::string::npos);
  CHECK(answer.find("X-Sigstream-Instance: i1\r\n") != std::string::npos);

  auto a_peer = server.join(a);
  auto b_peer = server.join(b);
  REQUIRE(server.run_until([&] { return !a.client.of_type("peer-joined").empty(); }));
  CHECK(field(a.client.of_type("peer-joined").front(), "peer") == b_peer);

  a.client.send_text(signal_to(b_peer, 7));
  REQUIRE(server.run_until([&] { return !b.client.of_type("signal").empty() && !a.client.of_type("ack").empty(); }));
  auto signal = b.client.of_type("signal").front();
  CHECK(field(signal, "from") == a_peer);
  CHECK(signal.find(R"("data":{"n":7})") != std::string::npos);
  CHECK(a.client.of_type("ack").front().find(R"("id":107)") != std::string::npos);
  // Server frames: final, unmasked, text.
  for (auto const& frame : b.client.frames()) {
    CHECK(frame.fin);
    CHECK_FALSE(frame.masked);
    CHECK(frame.op == text_op);
  }
  CHECK(server.rooms.counters.connections.load() == 2);
}

TEST_CASE("ws_session: an upgrade of another WebSocket version is refused with 426, then the connection ends",
          "[ws_session]") {
  test_server server;
  auto& a = server.connect();
  auto upgrade = upgrade_request();
  upgrade.set(http::field::sec_websocket_version, "8");
  server.start(a, std::move(upgrade));
  REQUIRE(server.run_until([&] { return a.client.ended() && a.session_ended(); }));
  auto answer = a.client.http_answer();
  CHECK(answer.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
  CHECK(answer.find("Sec-WebSocket-Version: 13\r\n") != std::string::npos);
  CHECK(a.client.received() == answer + "Sec-WebSocket-Version must be 13\n");  // and no frame
  CHECK(server.rooms.counters.connections.load() == 0);
}

TEST_CASE("ws_session: a message arriving one byte at a time is read whole", "[ws_session]") {
  test_server server;
  // Each of the server's reads gets one byte; or the client writes one
  // byte at a time (the server may read them together).
  bool server_reads_bytes = GENERATE(true, false);
  auto [a, b, a_peer, b_peer] = server.two_joined([&](connection& a, connection&) {
    if (server_reads_bytes) {
      a.server_end.read_size(1);
    } else {
      a.client.stream.write_size(1);
    }
  });
  a.client.send(client_frame(ping_op, "hb"));
  a.client.send_text(signal_to(b_peer, 1));
  REQUIRE(server.run_until([&] { return !b.client.of_type("signal").empty(); }));
  CHECK(field(b.client.of_type("signal").front(), "from") == a_peer);
  bool ponged = false;
  for (auto const& frame : a.client.frames())
    if (frame.op == pong_op && frame.payload == "hb") ponged = true;
  CHECK(ponged);
}

TEST_CASE("ws_session: a message larger than the read buffer is read on at once", "[ws_session]") {
  test_server server;
  auto [a, b, a_peer, b_peer] = server.two_joined();
  // Past the session's 512-byte buffer: the rest is read without waiting.
  std::string large(20'000, 'x');
  a.client.send_text(R"({"type":"signal","to":")" + b_peer + R"(","data":")" + large + R"(","id":5})");
  REQUIRE(server.run_until([&] { return !b.client.of_type("signal").empty(); }));
  CHECK(b.client.of_type("signal").front().find(large) != std::string::npos);
}

TEST_CASE("ws_session: a slow reader gets every frame whole and in order", "[ws_session]") {
  test_server server;
  // Every write the server makes to b moves one byte.
  auto [a, b, a_peer, b_peer] = server.two_joined([](connection&, connection& b) { b.server_end.write_size(1); });
  constexpr int signals = 30;
  for (int n = 0; n < signals; ++n) a.client.send_text(signal_to(b_peer, n));
  REQUIRE(server.run_until([&] { return b.client.of_type("signal").size() == signals; }));
  auto received = b.client.of_type("signal");
  for (int n = 0; n < signals; ++n)
    CHECK(received[n].find(R"("data":{"n":)" + std::to_string(n) + "}") != std::string::npos);
  for (auto const& frame : b.client.frames()) {
    CHECK(frame.fin);
    CHECK(frame.op == text_op);
  }
}

TEST_CASE("ws_session: the client's close is echoed, then the server ends the connection", "[ws_session]") {
  test_server server;
  auto [a, b, a_peer, b_peer] = server.two_joined();
  a.client.send(client_frame(close_op, close_payload(1000, "bye")));
  // The echo, then the server's FIN.
  REQUIRE(server.run_until([&] { return a.client.ended(); }));
  REQUIRE(a.client.close_frame());
  CHECK(a.client.close_frame()->close_code() == 1000);
  CHECK(a.client.frames().back().op == close_op);
  // The session reads on until the client's end, then ends.
  CHECK_FALSE(a.session_ended());
  a.client.stream.close();
  REQUIRE(server.run_until([&] { return a.session_ended(); }));
  // Closed on purpose: the others hear of it at once.
  REQUIRE(server.run_until([&] { return !b.client.of_type("peer-left").empty(); }));
  auto left = b.client.of_type("peer-left").front();
  CHECK(field(left, "peer") == a_peer);
  CHECK(field(left, "reason") == "disconnect");
  CHECK(server.rooms.counters.detached_peers.load() == 0);
}

TEST_CASE("ws_session: a frame over the size limit is answered with close 1009", "[ws_session]") {
  sig::server::connection_limits limits;
  limits.max_frame_bytes = 1024;
  limits.handshake_timeout = std::chrono::seconds(1);
  test_server server(limits);
  auto& a = server.connect();
  server.start(a);
  server.join(a);
  a.client.send_text(std::string(2000, ' '));
  REQUIRE(server.run_until([&] { return a.client.close_frame().has_value(); }));
  CHECK(a.client.close_frame()->close_code() == 1009);
  SECTION("the client answers: the server ends the connection, then the client") {
    a.client.send(client_frame(close_op, close_payload(1009)));
    REQUIRE(server.run_until([&] { return a.client.ended(); }));
    a.client.stream.close();
    REQUIRE(server.run_until([&] { return a.session_ended(); }));
  }
  SECTION("the client never answers: the session waits for the close deadline, then ends") {
    auto close_seen = std::chrono::steady_clock::now();
    REQUIRE(server.run_until([&] { return a.session_ended(); }));
    CHECK(std::chrono::steady_clock::now() - close_seen >= std::chrono::milliseconds(900));
  }
  CHECK(server.rooms.counters.detached_peers.load() == 0);  // closed on purpose: its leave is recorded
  CHECK(server.rooms.counters.joined_peers.load() == 0);
}

TEST_CASE("ws_session: a connection that never joins is closed with 1008 when its join deadline passes",
          "[ws_session]") {
  sig::server::connection_limits limits;
  limits.join_timeout = std::chrono::milliseconds(30);
  test_server server(limits);
  auto& a = server.connect();
  server.start(a);
  REQUIRE(server.run_until([&] { return a.client.close_frame().has_value(); }));
  CHECK(a.client.close_frame()->close_code() == 1008);
  a.client.send(client_frame(close_op, close_payload(1008)));
  REQUIRE(server.run_until([&] { return a.client.ended(); }));
  a.client.stream.close();
  REQUIRE(server.run_until([&] { return a.session_ended(); }));
  CHECK(server.rooms.counters.abusive_closes.load() == 1);
}

TEST_CASE("ws_session: a connection lost without a close keeps the peer for a resume", "[ws_session]") {
  test_server server;
  auto [a, b, a_peer, b_peer] = server.two_joined();
  a.client.stream.close();
  REQUIRE(server.run_until([&] { return a.session_ended(); }));
  REQUIRE(server.run_until([&] { return server.rooms.counters.detached_peers.load() == 1; }));
  server.run_for(std::chrono::milliseconds(50));
  CHECK(b.client.of_type("peer-left").empty());
}

TEST_CASE("ws_session: a client that stops reading is closed as a slow consumer; its room carries on",
          "[ws_session]") {
  sig::server::connection_limits limits;
  limits.write_queue_frames = 8;
  test_server server(limits);
  auto [a, b, a_peer, b_peer] = server.two_joined();
  b.stream->hold_writes();
  // The first frame to b goes into a write that never finishes; the next
  // ones queue behind it until the queue is full. One signal at a time, so
  // that a's own acknowledgements never pile up in a's queue.
  constexpr std::size_t signals = 20;
  for (std::size_t n = 0; n < signals; ++n) {
    a.client.send_text(signal_to(b_peer, static_cast<int>(n)));
    // The sender hears back about every signal: the room is not held up.
    REQUIRE(server.run_until([&] { return a.client.of_type("ack").size() == n + 1; }));
  }
  REQUIRE(server.run_until([&] { return b.session_ended(); }));
  CHECK(server.rooms.counters.slow_consumers.load() == 1);
  CHECK(b.client.of_type("signal").empty());  // nothing got through
  // With a write in flight there is no close handshake to have: the
  // connection is simply gone, and b's peer is kept for a resume.
  REQUIRE(server.run_until([&] { return server.rooms.counters.detached_peers.load() == 1; }));
  CHECK(a.client.of_type("peer-left").empty());
}

// How a fail_count run cuts the server's I/O, and how its exchange ends.
struct failure_run {
  std::size_t read_size = std::numeric_limits<std::size_t>::max();
  std::size_t write_size = std::numeric_limits<std::size_t>::max();
  // The server closes (1009, for a frame over the size limit) rather than
  // the client (1000).
  bool server_closes = false;
};

std::ostream& operator<<(std::ostream& out, failure_run const& run) {
  return out << "read_size " << run.read_size << ", write_size " << run.write_size
             << (run.server_closes ? ", the server closes" : ", the client closes");
}

// Beast's way (test/beast/websocket/*.cpp): run the whole exchange with a
// failure at the server's Nth operation, for N = 1, 2, ... until a run
// ends before its Nth operation. Every time, the session must end (no
// hang, no crash), and the room must be told what the code says of a lost
// connection: kept for a resume if it was joined and had not closed.
TEST_CASE("ws_session: a failure at any operation ends the session cleanly", "[ws_session]") {
  auto run = GENERATE(failure_run{}, failure_run{.read_size = 1}, failure_run{.write_size = 64},
                      failure_run{.server_closes = true}, failure_run{.read_size = 7, .server_closes = true});
  CAPTURE(run);
  constexpr std::size_t most_operations = 2000;
  constexpr std::size_t frame_limit = 2200;  // the large signal fits
  std::size_t n = 1;
  for (; n < most_operations; ++n) {
    CAPTURE(n);
    beast::test::fail_count fail(n);
    sig::server::connection_limits limits;
    limits.max_frame_bytes = frame_limit;
    test_server server(limits);
    auto& b = server.connect();
    server.start(b);
    auto b_peer = server.join(b);

    auto& a = server.connect(&fail);
    a.server_end.read_size(run.read_size);
    a.server_end.write_size(run.write_size);
    server.start(a);
    // Each step waits for its answer, or for the session to have ended.
    auto step = [&](std::function<bool()> const& answered) {
      REQUIRE(server.run_until([&] { return a.session_ended() || answered(); }));
      return !a.session_ended();
    };
    bool joined = false;
    bool ending_sent = false;  // the client's close, or the frame over the limit
    if (step([&] { return a.client.upgraded(); })) {
      a.client.send_text(R"({"type":"join","room":"r","id":1})");
      joined = step([&] { return !a.client.of_type("joined").empty(); });
    }
    // A signal larger than the session's read buffer: the rest of it is
    // read without waiting (read_available). Read a few bytes at a time, a
    // short one is enough (each read is an operation, each one a run).
    std::string large(run.read_size > 512 ? 2000 : 20, 'x');
    if (joined) {
      a.client.send_text(R"({"type":"signal","to":")" + b_peer + R"(","data":")" + large + R"(","id":2})");
      if (step([&] { return !a.client.of_type("ack").empty() && !b.client.of_type("signal").empty(); })) {
        a.client.send(client_frame(ping_op, "hb"));
        if (step([&] {
              for (auto const& frame : a.client.frames())
                if (frame.op == pong_op) return true;
              return false;
            })) {
          if (run.server_closes) {
            a.client.send_text(std::string(frame_limit + 1, ' '));
            ending_sent = true;
            if (step([&] { return a.client.close_frame().has_value(); }))
              a.client.send(client_frame(close_op, close_payload(1009)));
          } else {
            a.client.send(client_frame(close_op, close_payload(1000)));
            ending_sent = true;
          }
          step([&] { return a.client.ended(); });
        }
      }
    }
    a.client.stream.close();
    REQUIRE(server.run_until([&] { return a.session_ended(); }));
    CHECK(server.rooms.counters.connections.load() == 1);

    // What the room made of it, once settled: a member b heard of is
    // either kept for a resume or gone with a leave b hears of.
    auto heard_joined = [&] { return b.client.of_type("peer-joined").size(); };
    auto heard_left = [&] { return b.client.of_type("peer-left").size(); };
    auto kept = [&] { return static_cast<std::size_t>(server.rooms.counters.detached_peers.load()); };
    CHECK(server.run_until([&] { return heard_joined() == kept() + heard_left(); }));
    server.run_for(std::chrono::milliseconds(5));
    CHECK(heard_joined() == kept() + heard_left());
    CHECK(server.rooms.counters.joined_peers.load() == 1);  // b

    bool failed = a.server_operations() >= n;
    if (failed && joined && !ending_sent) {
      // The connection was lost: the peer waits for its resume.
      CHECK(kept() == 1);
      CHECK(heard_left() == 0);
    }
    if (!failed) {
      // The whole exchange went through: the close handshake, then a leave.
      CHECK(ending_sent);
      CHECK(b.client.of_type("signal").front().find(large) != std::string::npos);
      REQUIRE(a.client.close_frame());
      CHECK(a.client.close_frame()->close_code() == (run.server_closes ? 1009 : 1000));
      CHECK(a.client.ended());
      CHECK(kept() == 0);
      CHECK(heard_left() == 1);
      break;
    }
  }
  CHECK(n > 5);  // the exchange has that many operations at least
  CHECK(n < most_operations);
}
