#include "service/history/admin_api.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <sstream>

#include "domain/room_name.hpp"
#include "history/formats.hpp"
#include "history/redact.hpp"
#include "history/time_point.hpp"
#include "protocol/http_target.hpp"
#include "protocol/json.hpp"
#include "protocol/messages.hpp"

namespace sig::service {

namespace {

using protocol::json_quote;
constexpr std::string_view json_type = "application/json";
constexpr std::string_view rooms_path = "/admin/rooms";
constexpr std::string_view cluster_path = "/admin/cluster";

std::string error_body(std::string_view code, std::string_view message) {
  return fmt::format("{{\"error\":\"{}\",\"message\":{}}}\n", code, json_quote(message));
}

// Equal-time comparison: how long a wrong token takes to refuse must not
// tell how much of it was right.
bool same_secret(std::string_view given, std::string_view secret) {
  if (secret.empty()) return false;
  unsigned char diff = given.size() == secret.size() ? 0 : 1;
  for (std::size_t i = 0; i < given.size(); ++i)
    diff |= static_cast<unsigned char>(given[i] ^ secret[i % secret.size()]);
  return diff == 0;
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Writes jsonl lines to the reply in chunks of about 16 KiB, so a long
// history is neither buffered whole nor sent a line per write.
class chunked_lines : public std::streambuf {
 public:
  explicit chunked_lines(admin_reply& reply) : reply_(reply) {}
  bool ok() const { return ok_; }
  int sync() override {
    if (!buffer_.empty() && ok_) ok_ = reply_.chunk(std::move(buffer_));
    buffer_.clear();
    return ok_ ? 0 : -1;
  }

 protected:
  int_type overflow(int_type c) override {
    if (c == traits_type::eof()) return traits_type::not_eof(c);
    buffer_ += static_cast<char>(c);
    if (c == '\n' && buffer_.size() >= 16 * 1024) sync();
    return ok_ ? c : traits_type::eof();
  }
  std::streamsize xsputn(char const* s, std::streamsize n) override {
    buffer_.append(s, static_cast<std::size_t>(n));
    if (buffer_.size() >= 16 * 1024 && buffer_.back() == '\n') sync();
    return ok_ ? n : 0;
  }

 private:
  admin_reply& reply_;
  std::string buffer_;
  bool ok_ = true;
};

}  // namespace

admin_api::admin_api(admin_settings settings, history_source& log, room_index& index,
                     std::shared_ptr<spdlog::logger> logger)
    : settings_(std::move(settings)), log_(log), logger_(std::move(logger)), index_(index) {}

bool admin_api::is_api_path(std::string_view path) {
  return path == rooms_path || path == cluster_path || (path.starts_with(rooms_path) && path[rooms_path.size()] == '/');
}

admin_api::quick_answer admin_api::precheck(admin_request const& r) {
  if (!enabled())
    return {404, error_body("admin-off", "the admin API is off: no admin token is configured (--admin-token or "
                                         "SIGSTREAM_ADMIN_TOKEN)")};
  std::string_view given = r.authorization;
  bool bearer = given.size() > 7 && (given.substr(0, 7) == "Bearer " || given.substr(0, 7) == "bearer ");
  if (!bearer || !same_secret(given.substr(7), settings_.token)) {
    std::string_view path = r.target.substr(0, r.target.find('?'));
    logger_->warn("admin: refused {} {} from {}: {}", r.method, path.substr(0, 300), r.peer_address,
                  given.empty() ? "no token" : bearer ? "wrong token" : "not a bearer token");
    return {401, error_body("unauthorized", "a valid admin token is required: Authorization: Bearer <token>")};
  }
  if (r.method != "GET")  // a streamed answer has no HEAD form; nothing here changes state
    return {405, error_body("method-not-allowed", "the admin API answers GET only")};
  if (in_flight_.fetch_add(1) >= settings_.max_concurrent) {
    in_flight_.fetch_sub(1);
    return {503, error_body("busy", fmt::format("{} admin requests are running already; retry later",
                                                settings_.max_concurrent))};
  }
  return {};
}

void admin_api::shutdown() {
  std::lock_guard lock(active_mutex_);
  shut_down_ = true;
  for (auto* reply : active_) reply->cancel();
}

void admin_api::handle(admin_request const& r, admin_reply& reply) {
  struct registration {
    admin_api& api;
    admin_reply& reply;
    explicit registration(admin_api& a, admin_reply& r) : api(a), reply(r) {
      std::lock_guard lock(api.active_mutex_);
      if (api.shut_down_) reply.cancel();
      api.active_.insert(&reply);
    }
    ~registration() {
      {
        std::lock_guard lock(api.active_mutex_);
        api.active_.erase(&reply);
      }
      api.in_flight_.fetch_sub(1);
    }
  } registered(*this, reply);
  if (reply.client_gone()) return reply.whole(503, std::string(json_type), error_body("unavailable", "the instance is stopping"));
  std::size_t q = r.target.find('?');
  std::string_view path = r.target.substr(0, q);
  std::string_view query = q == std::string_view::npos ? std::string_view() : r.target.substr(q + 1);
  if (path == rooms_path) return rooms(query, reply);
  if (path == cluster_path) return cluster(reply);

  std::string_view rest = path.substr(rooms_path.size() + 1);  // after "/admin/rooms/"
  bool wants_history = false;
  if (std::size_t slash = rest.find('/'); slash != std::string_view::npos) {
    if (rest.substr(slash) != "/history")
      return reply.whole(404, std::string(json_type), error_body("not-found", "no such admin endpoint"));
    wants_history = true;
    rest = rest.substr(0, slash);
  }
  // Room names are percent-encoded in the path; '/' inside a name is %2F.
  auto room = protocol::percent_decode(rest);
  if (!room) return reply.whole(400, std::string(json_type), error_body("bad-request", "bad percent-encoding in the room name"));
  if (!domain::is_valid_room_name(*room))
    return reply.whole(400, std::string(json_type),
                       error_body("bad-request", "not a room name: a room name is 1 to 200 bytes of UTF-8"));
  if (wants_history) return history(*room, query, reply);
  return this->room(*room, query, reply);
}

// What `sigstream cluster` shows: every instance's last heartbeat (as it
// wrote it: version, start, peers, rooms) with its age, and where NATS
// keeps the stream (its leader and each copy's state in a NATS cluster).
void admin_api::cluster(admin_reply& reply) {
  auto beats = log_.heartbeats();
  if (!beats) return reply.whole(503, std::string(json_type), error_body("unavailable", "the heartbeats cannot be read now"));
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  std::string body = "{\"instances\":[";
  bool first = true;
  for (auto const& b : *beats) {
    if (b.removed) continue;  // stopped cleanly
    if (!first) body += ',';
    first = false;
    fmt::format_to(std::back_inserter(body), "{{\"instance\":{},\"heartbeat_age_ms\":{},\"heartbeat\":{}}}",
                   json_quote(b.instance), std::max<std::int64_t>(now - b.written_ms, 0),
                   // Embedded as written only if it is JSON (anyone with access to the bucket can write it).
                   protocol::json::parse(b.value, 8).ok() ? b.value : json_quote(b.value));
  }
  body += "],\"stream\":";
  if (auto where = log_.placement()) {
    fmt::format_to(std::back_inserter(body), "{{\"name\":{},\"cluster\":{},\"replicas\":{},\"leader\":{},\"copies\":[",
                   json_quote(log_.stream_name()), json_quote(where->cluster), where->replicas, json_quote(where->leader));
    for (std::size_t i = 0; i < where->followers.size(); ++i) {
      auto const& f = where->followers[i];
      fmt::format_to(std::back_inserter(body), "{}{{\"name\":{},\"state\":\"{}\",\"lag\":{}}}", i ? "," : "",
                     json_quote(f.name), f.offline ? "offline" : f.current ? "current" : "lagging", f.lag);
    }
    body += "]}";
  } else {
    body += "null";
  }
  body += "}\n";
  reply.whole(200, std::string(json_type), std::move(body));
}

void admin_api::rooms(std::string_view query, admin_reply& reply) {
  auto params = protocol::parse_query(query);
  bool active = false;
  if (!params) return reply.whole(400, std::string(json_type), error_body("bad-request", "bad percent-encoding in the query"));
  for (auto const& [key, value] : *params) {
    if (key == "active" && (value == "1" || value == "true" || value.empty())) active = true;
    else if (key == "active" && (value == "0" || value == "false")) active = false;
    else
      return reply.whole(400, std::string(json_type),
                         error_body("bad-request", fmt::format("unknown or bad query parameter \"{}\" (allowed: active=1)",
                                                               key.substr(0, 100))));
  }
  auto rooms = index_.rooms(log_, reply.client_gone());
  if (!rooms) return reply.whole(503, std::string(json_type), error_body("unavailable", "the event log cannot be read now"));
  std::string body = "{\"rooms\":[";
  bool first = true;
  for (auto const& r : *rooms) {
    if (active && r.members == 0) continue;
    body += (first ? "" : ",") + overview_json(r);
    first = false;
  }
  reply.whole(200, std::string(json_type), body + "]}\n");
}

void admin_api::room(std::string const& room, std::string_view query, admin_reply& reply) {
  if (!query.empty())
    return reply.whole(400, std::string(json_type), error_body("bad-request", "this endpoint takes no query parameters"));
  auto st = read_state(log_, room, std::nullopt, reply.client_gone());
  if (st.outcome == read_outcome::no_history)
    return reply.whole(404, std::string(json_type), error_body("not-found", "this room has no history"));
  if (st.outcome != read_outcome::done)
    return reply.whole(503, std::string(json_type), error_body("unavailable", "the event log cannot be read now"));
  reply.whole(200, std::string(json_type), state_json(room, st, settings_.redact) + "\n");
}

void admin_api::history(std::string const& room, std::string_view query, admin_reply& reply) {
  auto bad = [&](std::string const& why) { reply.whole(400, std::string(json_type), error_body("bad-request", why)); };
  auto params = protocol::parse_query(query);
  if (!params) return bad("bad percent-encoding in the query");
  history_query q;
  q.room = room;
  for (auto const& [key, value] : *params) {
    std::string error;
    if (key == "since" || key == "until") {
      auto p = history::parse_point(value, now_ms(), &error);
      if (!p) return bad(fmt::format("{}: {}", key, error));
      (key == "since" ? q.selection.since : q.selection.until) = p;
    } else if (key == "limit") {
      std::uint64_t n = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || end != value.data() + value.size() || value.empty())
        return bad(fmt::format("limit: \"{}\" is not a count", value.substr(0, 100)));
      q.limit = n;
    } else if (key == "format") {
      if (value != "jsonl") return bad(fmt::format("format: \"{}\" is not supported here (jsonl)", value.substr(0, 100)));
    } else if (key == "follow") {
      if (value == "1" || value == "true" || value.empty()) q.follow = true;
      else if (value != "0" && value != "false") return bad("follow: 1 or 0");
    } else if (key == "peer") {
      q.selection.peer = value;
    } else if (key == "kind") {
      auto k = history::parse_kinds(value, &error);
      if (!k) return bad("kind: " + error);
      q.selection.kind = *k;
    } else {
      return bad(fmt::format("unknown query parameter \"{}\" (since, until, limit, format, follow, peer, kind)",
                             key.substr(0, 100)));
    }
  }
  // A room with no history is a 404 unless the caller waits for it to start.
  if (!q.follow) {
    auto head = log_.last_seq(log_.subjects(domain::room_token(room)).events);
    if (!head) return reply.whole(503, std::string(json_type), error_body("unavailable", "the event log cannot be read now"));
    if (*head == 0) return reply.whole(404, std::string(json_type), error_body("not-found", "this room has no history"));
  }
  if (!reply.begin_stream("application/x-ndjson")) return;
  chunked_lines buffer(reply);
  std::ostream out(&buffer);
  history::format_options fo;
  fo.room = room;
  fo.redact = settings_.redact;
  fo.flush_each = q.follow;  // live lines go out as they come, not once 16 KiB gathered
  auto writer = history::make_writer(history::format::jsonl, out, fo);
  // An empty line now and then keeps proxies (HAProxy's `timeout server`)
  // from closing a followed stream that has gone quiet; readers skip it.
  q.on_quiet = [&] {
    out.flush();
    return reply.chunk("\n");
  };
  auto stats = read_history(log_, q, *writer, reply.client_gone());
  writer->finish();
  out.flush();
  if (stats.outcome == read_outcome::failed)
    logger_->warn("admin: history of room {} ended after {} events: the event log could not be read", json_quote(room),
                  stats.read);
  if (buffer.ok()) reply.end_stream();
}

}  // namespace sig::service
