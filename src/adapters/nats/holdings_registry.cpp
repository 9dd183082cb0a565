#include "adapters/nats/holdings_registry.hpp"

#include "adapters/nats/appender.hpp"
#include "domain/room_name.hpp"

namespace sig::nats {

namespace {
// How often released records are looked at (and the refresh is due).
constexpr std::chrono::seconds tick_interval{30};
}  // namespace

holdings_registry::holdings_registry(boost::asio::io_context& io, appender& appends, std::string bucket,
                                     std::string instance_id, std::chrono::milliseconds keep,
                                     std::chrono::milliseconds refresh)
    : appends_(appends),
      subject_prefix_("$KV." + bucket + "." + domain::holdings_key_prefix(instance_id)),
      timer_(io),
      keep_(keep),
      refresh_(refresh) {}

holdings_registry::~holdings_registry() { timer_.cancel(); }

void holdings_registry::start() { tick(); }

// Under mutex_: the writes of one key leave in the order they were decided,
// so a delete and a later write are stored in that order.
void holdings_registry::write(std::string const& token) {
  auto& r = records_[token];
  appends_.append(subject_prefix_ + token, r.name, {}, service::append_kind::membership,
                  [this, token](service::append_result result) { on_written(token, result.ok); });
}

void holdings_registry::on_written(std::string const& token, bool ok) {
  std::vector<std::function<void(bool)>> waiting;
  {
    std::lock_guard lock(mutex_);
    auto it = records_.find(token);
    if (it == records_.end()) return;
    it->second.stored = it->second.stored || ok;
    waiting.swap(it->second.waiting);
  }
  for (auto& done : waiting) done(ok);
}

void holdings_registry::hold(std::string const& room_token, std::string const& room_name,
                             std::function<void(bool)> done) {
  std::unique_lock lock(mutex_);
  auto& r = records_[room_token];
  r.name = room_name;
  ++r.followers;
  if (r.stored) {
    lock.unlock();
    done(true);  // recorded already: a room followed again soon after costs nothing
    return;
  }
  bool writing = !r.waiting.empty();
  r.waiting.push_back(std::move(done));
  if (!writing) write(room_token);
}

void holdings_registry::release(std::string const& room_token) {
  std::lock_guard lock(mutex_);
  auto it = records_.find(room_token);
  if (it == records_.end() || it->second.followers == 0) return;
  if (--it->second.followers == 0) it->second.released = clock::now();
}

void holdings_registry::tick() {
  {
    std::lock_guard lock(mutex_);
    auto now = clock::now();
    bool refresh = now - last_refresh_ >= refresh_;
    if (refresh) last_refresh_ = now;
    for (auto it = records_.begin(); it != records_.end();) {
      auto& r = it->second;
      if (r.followers == 0 && r.waiting.empty() && now - r.released >= keep_) {
        if (r.stored)
          appends_.append(subject_prefix_ + it->first, {}, {}, service::append_kind::membership,
                          [](service::append_result) {}, "DEL");
        it = records_.erase(it);
        continue;
      }
      if (refresh && r.stored && r.waiting.empty()) {
        r.waiting.push_back([](bool) {});
        write(it->first);
      }
      ++it;
    }
  }
  timer_.expires_after(tick_interval);
  timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec) tick();
  });
}

}  // namespace sig::nats
