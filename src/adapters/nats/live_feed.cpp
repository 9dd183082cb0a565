#include "adapters/nats/live_feed.hpp"

#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>
#include <utility>

#include "adapters/nats/connection.hpp"
#include "adapters/nats/nats_errors.hpp"

namespace sig::nats {

namespace {

std::uint64_t header_u64(natsMsg* msg, char const* key) {
  char const* value = nullptr;
  if (natsMsgHeader_Get(msg, key, &value) != NATS_OK || value == nullptr) return 0;
  return std::strtoull(value, nullptr, 10);
}

// The header block of a received message, read in place. nats.c 3.4 keeps
// a received message in one block: subject, NUL, headers, NUL, data (msg.c
// natsMsg_create; a reply would come between, and live copies have none).
// Reading it here spares nats.c's lifting of every header into a hash table
// on the first natsMsgHeader_Get, a dozen allocations per live message. A
// block that does not look exactly like a header block is not used: the
// caller falls back to natsMsgHeader_Get.
std::optional<std::string_view> header_block(natsMsg* msg) {
  char const* subject = natsMsg_GetSubject(msg);
  char const* data = natsMsg_GetData(msg);
  if (subject == nullptr || data == nullptr || natsMsg_GetReply(msg) != nullptr) return std::nullopt;
  char const* start = subject + std::strlen(subject) + 1;
  if (data <= start || data[-1] != '\0') return std::nullopt;
  std::string_view block(start, static_cast<std::size_t>(data - 1 - start));
  if (!block.starts_with("NATS/1.0") || !block.ends_with("\r\n\r\n")) return std::nullopt;
  return block;
}

// The number after "\r\n<key>:" in a header block; 0 if absent.
std::uint64_t block_u64(std::string_view block, std::string_view key) {
  for (auto at = block.find(key); at != std::string_view::npos; at = block.find(key, at + 1)) {
    if (at < 2 || block.substr(at - 2, 2) != "\r\n" || at + key.size() >= block.size() || block[at + key.size()] != ':')
      continue;
    auto p = at + key.size() + 1;
    while (p < block.size() && block[p] == ' ') ++p;
    std::uint64_t value = 0;
    auto [end, ec] = std::from_chars(block.data() + p, block.data() + block.size(), value);
    return ec == std::errc() ? value : 0;
  }
  return 0;
}

}  // namespace

struct live_feed::follower {
  std::string subject;
  std::function<void(service::live_message)> on_message;
  natsSubscription* sub = nullptr;
};

struct live_feed::registry {
  mutable std::mutex mutex;
  // By subject. Usually one follower each; two for a moment when a room
  // object is replaced by a new one for the same room.
  struct string_hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, std::vector<std::shared_ptr<follower>>, string_hash, std::equal_to<>> followers;

  void add(std::shared_ptr<follower> const& f) {
    std::lock_guard lock(mutex);
    followers[f->subject].push_back(f);
  }
  // Takes `f` out, and returns its subscription for the caller to end.
  natsSubscription* remove(std::shared_ptr<follower> const& f) {
    std::lock_guard lock(mutex);
    natsSubscription* sub = nullptr;
    std::swap(sub, f->sub);
    auto it = followers.find(f->subject);
    if (it != followers.end()) {
      auto& list = it->second;
      list.erase(std::remove(list.begin(), list.end(), f), list.end());
      if (list.empty()) followers.erase(it);
    }
    return sub;
  }
};

class live_feed::handle final : public service::live_follow {
 public:
  handle(std::weak_ptr<registry> r, std::shared_ptr<follower> f) : registry_(std::move(r)), follower_(std::move(f)) {}
  ~handle() override {
    auto r = registry_.lock();
    if (!r) return;  // the feed is gone, and its subscriptions with it
    if (auto* sub = r->remove(follower_)) {
      natsSubscription_Unsubscribe(sub);
      natsSubscription_Destroy(sub);
    }
  }

 private:
  std::weak_ptr<registry> registry_;
  std::shared_ptr<follower> follower_;
};

live_feed::live_feed(connection& conn, std::string subject_prefix, std::function<void(natsMsg*)> spent)
    : conn_(conn),
      prefix_(std::move(subject_prefix) + ".live."),
      spent_(std::move(spent)),
      registry_(std::make_shared<registry>()) {}

live_feed::~live_feed() {
  std::lock_guard lock(registry_->mutex);
  for (auto& [subject, list] : registry_->followers)
    for (auto& f : list)
      if (f->sub != nullptr) natsSubscription_Destroy(std::exchange(f->sub, nullptr));
  registry_->followers.clear();
}

std::unique_ptr<service::live_follow> live_feed::follow(std::string const& room_token,
                                                        std::function<void(service::live_message)> on_message) {
  if (conn_.handle() == nullptr || conn_.closing()) return nullptr;
  auto f = std::make_shared<follower>();
  f->subject = prefix_ + room_token + ".e";
  f->on_message = std::move(on_message);
  // Registered before subscribing: the first message may come at once.
  registry_->add(f);
  natsSubscription* sub = nullptr;
  natsStatus s = natsConnection_SubscribeSync(&sub, conn_.handle(), f->subject.c_str());
  if (s != NATS_OK) {
    fail(nats_error(s), "cannot subscribe to " + f->subject);
    registry_->remove(f);
    return nullptr;
  }
  // Only used without inline delivery: generous, since a message dropped
  // here becomes a gap and a catch-up read, which costs far more.
  natsSubscription_SetPendingLimits(sub, 1 << 20, 256 << 20);
  {
    std::lock_guard lock(registry_->mutex);
    f->sub = sub;
  }
  return std::make_unique<handle>(registry_, std::move(f));
}

// A connection closed or lost under the call has been told of once, by the
// connection itself (or is our own close): quiet. Anything else is worth a
// look.
void live_feed::fail(std::error_code ec, std::string_view what) const {
  conn_.log().log(connection_gone(ec) ? spdlog::level::debug : spdlog::level::warn, "{}: {}", what,
                  with_nats_trace(ec));
}

void live_feed::deliver(follower& f, natsMsg* msg) {
  service::live_message out;
  if (auto block = header_block(msg)) {
    out.seq = block_u64(*block, "Nats-Sequence");
    out.previous_subject_seq = block_u64(*block, "Nats-Last-Sequence");
  } else {
    if (!header_fallback_logged_.exchange(true))
      conn_.log().info("live messages' headers are read through nats.c (this libnats lays messages out otherwise)");
    out.seq = header_u64(msg, "Nats-Sequence");
    out.previous_subject_seq = header_u64(msg, "Nats-Last-Sequence");
  }
  if (out.seq == 0) return;  // not a republished stream message
  out.payload.assign(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg)));
  f.on_message(std::move(out));
}

bool live_feed::take(natsMsg* msg) {
  char const* subject = natsMsg_GetSubject(msg);
  if (subject == nullptr) return false;
  std::string_view s(subject);
  if (s.substr(0, prefix_.size()) != prefix_) return false;
  std::shared_ptr<follower> target;
  {
    std::lock_guard lock(registry_->mutex);
    auto it = registry_->followers.find(s);
    if (it != registry_->followers.end() && !it->second.empty()) target = it->second.back();
  }
  if (target) deliver(*target, msg);
  spent_(msg);
  return true;
}

// Under the lock, so that no subscription is destroyed while read; the
// callbacks only post.
void live_feed::drain_queued() {
  std::lock_guard lock(registry_->mutex);
  for (auto& [subject, list] : registry_->followers) for (auto& f : list) {
    if (f->sub == nullptr) continue;
    int pending = 0;
    natsSubscription_GetPending(f->sub, &pending, nullptr);
    for (; pending > 0; --pending) {
      natsMsg* msg = nullptr;
      if (natsSubscription_NextMsg(&msg, f->sub, 0) != NATS_OK || msg == nullptr) break;
      deliver(*f, msg);
      spent_(msg);
    }
  }
}

std::size_t live_feed::followed() const {
  std::lock_guard lock(registry_->mutex);
  return registry_->followers.size();
}

}  // namespace sig::nats
