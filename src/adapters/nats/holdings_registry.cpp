#include "adapters/nats/holdings_registry.hpp"

#include <future>
#include <memory>
#include <vector>

#include "adapters/nats/appender.hpp"
#include "domain/room_name.hpp"

namespace sig::nats {

std::string holdings_registry::key_prefix(std::string const& instance_id) {
  return domain::base64url(instance_id) + ".";
}

holdings_registry::holdings_registry(boost::asio::io_context& io, appender& appends, std::string bucket,
                                     std::string instance_id, std::chrono::milliseconds refresh)
    : appends_(appends),
      subject_prefix_("$KV." + bucket + "." + key_prefix(instance_id)),
      refresh_timer_(io),
      refresh_(refresh) {}

holdings_registry::~holdings_registry() { refresh_timer_.cancel(); }

void holdings_registry::start() { schedule_refresh(); }

void holdings_registry::put(std::string const& token, std::string const& name, std::function<void(bool)> done) {
  appends_.append(subject_prefix_ + token, name, {}, service::append_kind::membership,
                  [done = std::move(done)](service::append_result r) {
                    if (done) done(r.ok);
                  });
}

void holdings_registry::hold(std::string const& room_token, std::string const& room_name,
                             std::function<void(bool)> done) {
  // Under the lock: the publishes of one key leave in the order of its
  // count's changes, so a release and the next hold are stored in order.
  std::lock_guard lock(mutex_);
  auto& room = held_[room_token];
  room.name = room_name;
  ++room.count;
  put(room_token, room_name, std::move(done));
}

void holdings_registry::release(std::string const& room_token) {
  std::lock_guard lock(mutex_);
  auto it = held_.find(room_token);
  if (it == held_.end() || --it->second.count > 0) return;
  held_.erase(it);
  appends_.append(subject_prefix_ + room_token, {}, {}, service::append_kind::membership, [](service::append_result) {},
                  "DEL");
}

void holdings_registry::release_all(std::chrono::milliseconds wait) {
  std::vector<std::shared_ptr<std::promise<void>>> stored;
  {
    std::lock_guard lock(mutex_);
    for (auto const& [token, room] : held_) {
      auto p = std::make_shared<std::promise<void>>();
      stored.push_back(p);
      appends_.append(subject_prefix_ + token, {}, {}, service::append_kind::membership,
                      [p](service::append_result) { p->set_value(); }, "DEL");
    }
    held_.clear();
  }
  auto deadline = std::chrono::steady_clock::now() + wait;
  for (auto& p : stored) p->get_future().wait_until(deadline);
}

void holdings_registry::schedule_refresh() {
  refresh_timer_.expires_after(refresh_);
  refresh_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    {
      std::lock_guard lock(mutex_);
      for (auto const& [token, room] : held_) put(token, room.name, nullptr);
    }
    schedule_refresh();
  });
}

}  // namespace sig::nats
