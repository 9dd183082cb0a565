#pragma once
// The rooms this instance follows, by name. Safe from any thread.
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace sig::service {

class room;
struct room_context;

class room_directory {
 public:
  void attach(room_context& ctx) { ctx_ = &ctx; }
  std::shared_ptr<room> get_or_create(std::string const& name);
  // Forgets `which` if it is still the room registered under its name.
  void remove(room const* which);
  std::size_t size() const;
  // Shutting down: every room records the leave of its local peers.
  void disconnect_all();
  // Forgets every room (at exit, while the io_context still exists).
  void clear();

 private:
  room_context* ctx_ = nullptr;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, std::shared_ptr<room>> rooms_;
};

}  // namespace sig::service
