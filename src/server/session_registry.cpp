#include "server/session_registry.hpp"

#include <vector>

#include "server/ws_session.hpp"

namespace sig::server {

void session_registry::add(std::shared_ptr<ws_session> const& session) {
  std::lock_guard lock(mutex_);
  sessions_[session.get()] = session;
}

void session_registry::remove(ws_session const* session) {
  std::function<void()> emptied;
  {
    std::lock_guard lock(mutex_);
    if (sessions_.erase(session) != 0 && sessions_.empty()) emptied = on_empty_;
  }
  if (emptied) emptied();
}

bool session_registry::empty() {
  std::lock_guard lock(mutex_);
  return sessions_.empty();
}

void session_registry::on_empty(std::function<void()> callback) {
  std::lock_guard lock(mutex_);
  on_empty_ = std::move(callback);
}

void session_registry::move_all_elsewhere() {
  std::vector<std::shared_ptr<ws_session>> live;
  {
    std::lock_guard lock(mutex_);
    live.reserve(sessions_.size());
    for (auto const& [key, weak] : sessions_)
      if (auto s = weak.lock()) live.push_back(std::move(s));
  }
  for (auto const& s : live) s->move_elsewhere();
}

}  // namespace sig::server
