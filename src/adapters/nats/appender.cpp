#include "adapters/nats/appender.hpp"

#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>

#include "adapters/nats/connection.hpp"
#include "adapters/nats/nats_errors.hpp"
#include "adapters/nats/pub_ack.hpp"

namespace sig::nats {

namespace {
constexpr char msg_id_header[] = "Nats-Msg-Id";
}  // namespace

appender::appender(connection& conn, appender_settings settings, std::function<void(natsMsg*)> spent)
    : conn_(conn), settings_(settings), spent_(std::move(spent)) {}

appender::~appender() {
  if (inbox_sub_ != nullptr) natsSubscription_Destroy(inbox_sub_);
}

// Only starting can fail here, and the instance cannot append without the
// inbox; once closing, the connection's end explains it.
void appender::fail(std::error_code ec, std::string_view what) const {
  conn_.log().log(conn_.closing() ? spdlog::level::debug : spdlog::level::err, "{}: {}", what, with_nats_trace(ec));
}

bool appender::start(bool queued) {
  natsInbox* inbox = nullptr;
  if (natsStatus s = natsInbox_Create(&inbox); s != NATS_OK) {
    fail(nats_error(s), "cannot make the acknowledgement inbox");
    return false;
  }
  inbox_ = std::string(inbox) + ".";
  natsInbox_Destroy(inbox);
  std::string subject = inbox_ + "*";
  natsStatus s = queued ? natsConnection_Subscribe(&inbox_sub_, conn_.handle(), subject.c_str(),
                                                   &appender::on_queued_message, this)
                        : natsConnection_SubscribeSync(&inbox_sub_, conn_.handle(), subject.c_str());
  if (s != NATS_OK) {
    fail(nats_error(s), "cannot subscribe to the acknowledgement inbox");
    return false;
  }
  // Never drop an acknowledgement for want of room: the bound above keeps
  // their number small anyway.
  natsSubscription_SetPendingLimits(inbox_sub_, -1, -1);
  return true;
}

void appender::on_queued_message(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
  auto* self = static_cast<appender*>(closure);
  if (!self->take(msg)) natsMsg_Destroy(msg);
}

void appender::append(std::string const& subject, std::string_view payload, std::string const& msg_id,
                      service::append_kind kind, std::function<void(service::append_result)> done,
                      char const* kv_operation) {
  if (!conn_.connected() || inbox_sub_ == nullptr) {
    done(service::append_result{false, 0, false, service::append_error::not_connected, "not connected to NATS"});
    return;
  }
  bool request = kind == service::append_kind::request;
  std::uint64_t token = 0;
  char const* refusal = nullptr;
  {
    std::lock_guard lock(mutex_);
    auto now = std::chrono::steady_clock::now();
    if (request && requests_in_flight_ >= settings_.max_in_flight) {
      ++refused_for_load_;
      refusal = "too many appends in flight";
    } else if (request && settings_.max_delay.count() > 0 && oldest_wait(now) > settings_.max_delay) {
      ++refused_for_load_;
      ++refused_for_delay_;
      refusal = "the event log is behind: acknowledgements are late";
    } else {
      token = ++next_token_;
      auto deadline = now + settings_.ack_timeout;
      pending_.emplace(token, pending_append{std::move(done), deadline, request});
      if (request) ++requests_in_flight_;
      deadlines_.emplace_back(deadline, token);
    }
  }
  if (token == 0) {
    done(service::append_result{false, 0, false, service::append_error::overloaded, refusal});
    return;
  }
  char reply[96];
  auto [end, ec] = std::to_chars(reply, reply + sizeof reply - 1, token);
  (void)ec;
  std::string reply_subject = inbox_;
  reply_subject.append(reply, end);
  natsMsg* msg = nullptr;
  natsStatus s = natsMsg_Create(&msg, subject.c_str(), reply_subject.c_str(), payload.data(),
                                static_cast<int>(payload.size()));
  if (s == NATS_OK && !msg_id.empty()) s = natsMsgHeader_Set(msg, msg_id_header, msg_id.c_str());
  if (s == NATS_OK && kv_operation != nullptr) s = natsMsgHeader_Set(msg, "KV-Operation", kv_operation);
  // Copied into the connection's buffer: written by the loop (or nats.c) later.
  if (s == NATS_OK) s = natsConnection_PublishMsg(conn_.handle(), msg);
  if (msg != nullptr) spent_(msg);
  // The result's code is the port's; nats.c's words go beside it, for the
  // room's log.
  if (s != NATS_OK)
    settle(token, service::append_result{false, 0, false, service::append_error::failed, nats_error(s).message()});
}

// Under mutex_. Entries of settled appends stay in `deadlines_` until they
// reach its front; those are dropped here.
std::chrono::steady_clock::duration appender::oldest_wait(std::chrono::steady_clock::time_point now) {
  while (!deadlines_.empty() && pending_.count(deadlines_.front().second) == 0) deadlines_.pop_front();
  if (deadlines_.empty()) return {};
  return now - (deadlines_.front().first - settings_.ack_timeout);
}

bool appender::take(natsMsg* msg) {
  char const* subject = natsMsg_GetSubject(msg);
  if (subject == nullptr || std::string_view(subject).substr(0, inbox_.size()) != inbox_) return false;
  std::string_view tail = std::string_view(subject).substr(inbox_.size());
  std::uint64_t token = 0;
  std::from_chars(tail.data(), tail.data() + tail.size(), token);
  std::string_view body(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
  service::append_result result;
  std::string stream;
  if (body.empty()) {
    // A status without a body: 503 "no responders" when no stream takes the subject.
    result.error = service::append_error::refused;
    result.detail = "no stream answered (is JetStream up, and the stream there?)";
  } else {
    pub_ack ack = parse_pub_ack(body);
    result.ok = ack.ok;
    result.seq = ack.seq;
    result.duplicate = ack.duplicate;
    if (!ack.ok) result.error = service::append_error::refused;
    result.detail = std::move(ack.error);
    stream = std::move(ack.stream);
  }
  spent_(msg);
  if (token != 0) settle(token, std::move(result), stream);
  return true;
}

void appender::settle(std::uint64_t token, service::append_result result, std::string const& stream) {
  std::function<void(service::append_result)> done;
  std::vector<std::function<void()>> idle;
  bool went_back = false;
  {
    std::lock_guard lock(mutex_);
    // Appends of one connection are stored in the order they are sent, and
    // a duplicate keeps its first copy's (lower) seq: only a new one counts.
    if (result.ok && !result.duplicate && !stream.empty()) {
      auto& highest = highest_seq_[stream];
      if (result.seq < highest && !went_back_) went_back = went_back_ = true;
      highest = std::max(highest, result.seq);
    }
    auto it = pending_.find(token);
    if (it == pending_.end()) return;  // timed out already
    done = std::move(it->second.done);
    if (it->second.request) --requests_in_flight_;
    pending_.erase(it);
    if (pending_.empty()) idle.swap(when_idle_);
  }
  if (went_back)
    conn_.log().error("the stream's sequences went back (it was deleted and made again, or restored from an older "
                      "backup): rooms followed here may miss events. Restart every instance (docs/operations.md, "
                      "'NATS is down')");
  done(std::move(result));
  for (auto& callback : idle) callback();
}

void appender::expire_overdue(std::chrono::steady_clock::time_point now) {
  std::vector<std::function<void(service::append_result)>> overdue;
  std::vector<std::function<void()>> idle;
  {
    std::lock_guard lock(mutex_);
    while (!deadlines_.empty() && deadlines_.front().first <= now) {
      auto it = pending_.find(deadlines_.front().second);
      if (it != pending_.end()) {
        overdue.push_back(std::move(it->second.done));
        if (it->second.request) --requests_in_flight_;
        pending_.erase(it);
      }
      deadlines_.pop_front();
    }
    timed_out_ += overdue.size();
    if (!overdue.empty() && pending_.empty()) idle.swap(when_idle_);
  }
  for (auto& done : overdue) done(service::append_result{false, 0, false, service::append_error::timed_out, "Timeout"});
  for (auto& callback : idle) callback();
}

void appender::fail_all(std::string const& why) {
  std::unordered_map<std::uint64_t, pending_append> dropped;
  std::vector<std::function<void()>> idle;
  {
    std::lock_guard lock(mutex_);
    dropped.swap(pending_);
    deadlines_.clear();
    requests_in_flight_ = 0;
    idle.swap(when_idle_);
  }
  for (auto& [token, p] : dropped) p.done(service::append_result{false, 0, false, service::append_error::closing, why});
  for (auto& callback : idle) callback();
}

void appender::when_idle(std::function<void()> callback) {
  {
    std::lock_guard lock(mutex_);
    if (!pending_.empty()) {
      when_idle_.push_back(std::move(callback));
      return;
    }
  }
  callback();
}

std::size_t appender::in_flight() const {
  std::lock_guard lock(mutex_);
  return pending_.size();
}

}  // namespace sig::nats
