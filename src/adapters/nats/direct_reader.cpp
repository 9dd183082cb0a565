#include "adapters/nats/direct_reader.hpp"

#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <vector>

#include "adapters/nats/connection.hpp"
#include "adapters/nats/nats_errors.hpp"

namespace sig::nats {

direct_reader::direct_reader(connection& conn, std::chrono::milliseconds timeout, std::function<void(natsMsg*)> spent)
    : conn_(conn), timeout_(timeout), spent_(std::move(spent)) {}

direct_reader::~direct_reader() {
  if (inbox_sub_ != nullptr) natsSubscription_Destroy(inbox_sub_);
}

// A connection closed or lost under the call has been told of once, by the
// connection itself (or is our own close): quiet. Without the inbox the
// instance cannot start: an error. A failed read costs the room's waiting
// joins an `unavailable`: a warning.
void direct_reader::fail(std::error_code ec, std::string_view what) const {
  auto level = connection_gone(ec) ? spdlog::level::debug
               : inbox_sub_ == nullptr ? spdlog::level::err
                                       : spdlog::level::warn;
  conn_.log().log(level, "{}: {}", what, with_nats_trace(ec));
}

bool direct_reader::start() {
  natsInbox* inbox = nullptr;
  if (natsStatus s = natsInbox_Create(&inbox); s != NATS_OK) {
    fail(nats_error(s), "cannot make the direct-get inbox");
    return false;
  }
  inbox_ = std::string(inbox) + ".";
  natsInbox_Destroy(inbox);
  std::string subject = inbox_ + "*";
  natsStatus s = natsConnection_SubscribeSync(&inbox_sub_, conn_.handle(), subject.c_str());
  if (s != NATS_OK) {
    fail(nats_error(s), "cannot subscribe to the direct-get inbox");
    return false;
  }
  natsSubscription_SetPendingLimits(inbox_sub_, -1, -1);
  return true;
}

void direct_reader::read_head(std::string const& stream, std::string const& subject, head_callback done) {
  read_newest(stream, subject, [done = std::move(done)](std::optional<service::stored_message> newest) {
    done(newest ? std::optional<std::uint64_t>(newest->seq) : std::nullopt);
  });
}

void direct_reader::read_newest(std::string const& stream, std::string const& subject, message_callback done) {
  // $JS.API.DIRECT.GET.<stream>.<subject>, no body: the last message of the subject.
  send("$JS.API.DIRECT.GET." + stream + "." + subject, {}, subject, std::move(done));
}

void direct_reader::read_next(std::string const& stream, std::string const& subject, std::uint64_t from,
                              message_callback done) {
  // Subjects are tokens of [A-Za-z0-9_.-] here (room subjects): nothing to escape in JSON.
  std::string body = "{\"seq\":" + std::to_string(std::max<std::uint64_t>(from, 1)) + ",\"next_by_subj\":\"" +
                     subject + "\"}";
  send("$JS.API.DIRECT.GET." + stream, body, subject, std::move(done));
}

void direct_reader::send(std::string const& request, std::string_view body, std::string const& subject,
                         message_callback done) {
  if (!conn_.connected() || inbox_sub_ == nullptr) {
    done(std::nullopt);
    return;
  }
  std::uint64_t token = 0;
  {
    std::lock_guard lock(mutex_);
    token = ++next_token_;
    pending_.emplace(token, std::move(done));
    deadlines_.emplace_back(std::chrono::steady_clock::now() + timeout_, token);
  }
  char digits[24];
  auto [end, ec] = std::to_chars(digits, digits + sizeof digits, token);
  (void)ec;
  std::string reply = inbox_;
  reply.append(digits, end);
  natsStatus s = natsConnection_PublishRequest(conn_.handle(), request.c_str(), reply.c_str(),
                                               body.empty() ? nullptr : body.data(), static_cast<int>(body.size()));
  if (s != NATS_OK) {
    fail(nats_error(s), "cannot read " + subject);
    settle(token, std::nullopt);
  }
}

bool direct_reader::take(natsMsg* msg) {
  char const* subject = natsMsg_GetSubject(msg);
  if (subject == nullptr || std::strncmp(subject, inbox_.data(), inbox_.size()) != 0) return false;
  std::uint64_t token = 0;
  std::string_view tail(subject + inbox_.size());
  std::from_chars(tail.data(), tail.data() + tail.size(), token);
  std::optional<service::stored_message> answer;
  char const* value = nullptr;
  if (natsMsg_GetDataLength(msg) == 0 && natsMsgHeader_Get(msg, "Status", &value) == NATS_OK) {
    // 404: nothing stored on the subject (from there). Anything else (503
    // no responders, 408) is an error the caller reports.
    if (std::strcmp(value, "404") == 0) answer = service::stored_message{};
    else conn_.log().warn("direct get answered status {}", value);
  } else if (natsMsgHeader_Get(msg, "Nats-Sequence", &value) == NATS_OK) {
    std::uint64_t seq = 0;
    auto length = std::strlen(value);
    if (std::from_chars(value, value + length, seq).ec == std::errc() && seq > 0)
      answer = service::stored_message{
          seq, std::string(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg)))};
  }
  spent_(msg);
  settle(token, std::move(answer));
  return true;
}

void direct_reader::settle(std::uint64_t token, std::optional<service::stored_message> answer) {
  message_callback done;
  {
    std::lock_guard lock(mutex_);
    auto it = pending_.find(token);
    if (it == pending_.end()) return;  // timed out already
    done = std::move(it->second);
    pending_.erase(it);
  }
  done(std::move(answer));
}

void direct_reader::expire_overdue(std::chrono::steady_clock::time_point now) {
  std::vector<message_callback> overdue;
  {
    std::lock_guard lock(mutex_);
    while (!deadlines_.empty() && deadlines_.front().first <= now) {
      if (auto it = pending_.find(deadlines_.front().second); it != pending_.end()) {
        overdue.push_back(std::move(it->second));
        pending_.erase(it);
      }
      deadlines_.pop_front();
    }
    // Entries of settled reads wait at the front until their time comes.
    while (!deadlines_.empty() && pending_.count(deadlines_.front().second) == 0) deadlines_.pop_front();
  }
  for (auto& done : overdue) done(std::nullopt);
}

void direct_reader::fail_all() {
  std::unordered_map<std::uint64_t, message_callback> dropped;
  {
    std::lock_guard lock(mutex_);
    dropped.swap(pending_);
    deadlines_.clear();
  }
  for (auto& [token, done] : dropped) done(std::nullopt);
}

}  // namespace sig::nats
