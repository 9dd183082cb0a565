#include "service/room/room_directory.hpp"

#include "service/room/room.hpp"

namespace sig::service {

std::shared_ptr<room> room_directory::get_or_create(std::string const& name) {
  std::lock_guard lock(mutex_);
  auto& slot = rooms_[name];
  if (!slot) slot = std::make_shared<room>(*ctx_, name);
  return slot;
}

void room_directory::remove(room const* which) {
  std::shared_ptr<room> dropped;  // destroyed outside the lock
  std::lock_guard lock(mutex_);
  auto it = rooms_.find(which->name());
  if (it != rooms_.end() && it->second.get() == which) {
    dropped = std::move(it->second);
    rooms_.erase(it);
  }
}

void room_directory::disconnect_all() {
  std::lock_guard lock(mutex_);
  for (auto& [name, r] : rooms_) r->disconnect_all();
}

void room_directory::clear() {
  std::unordered_map<std::string, std::shared_ptr<room>> dropped;  // destroyed outside the lock
  std::lock_guard lock(mutex_);
  dropped.swap(rooms_);
}

std::size_t room_directory::size() const {
  std::lock_guard lock(mutex_);
  return rooms_.size();
}

}  // namespace sig::service
