#pragma once
// Which instances are alive, from their heartbeats. Pure: heartbeats and the
// clock are inputs. An instance is alive while its heartbeat's revision keeps
// changing; it is dead once the revision has stood still for `timeout` by the
// observer's own clock (so clock skew between hosts never matters), or at
// once when it said goodbye. Each death is reported once.
#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace sig::domain {

class liveness {
 public:
  using clock = std::chrono::steady_clock;

  explicit liveness(clock::duration timeout) : timeout_(timeout) {}

  // A heartbeat of `instance` with this revision was seen at `now`.
  void heartbeat(std::string const& instance, std::uint64_t revision, clock::time_point now);
  // The instance stopped cleanly and removed its heartbeat: not dead, gone.
  void goodbye(std::string const& instance);
  // Instances whose heartbeat has stood still for the timeout and were not
  // reported yet. A later heartbeat makes an instance alive again.
  std::vector<std::string> newly_dead(clock::time_point now);
  bool alive(std::string const& instance, clock::time_point now) const;
  // Every instance with a heartbeat seen and not stale.
  std::vector<std::string> alive_instances(clock::time_point now) const;
  // How many of them, without a list: for the gauge, every turn of the watch.
  std::size_t alive_count(clock::time_point now) const;

 private:
  struct seen {
    std::uint64_t revision = 0;
    clock::time_point changed;
    bool reported_dead = false;
  };
  clock::duration timeout_;
  std::map<std::string, seen> instances_;
};

// The message id of the `expired` leave of a member (room token, peer, join
// seq). Every instance that records it uses the same id, so JetStream keeps
// one however many record it at once.
std::string expiry_message_id(std::string_view room_token, std::string_view peer, std::uint64_t join_seq);

}  // namespace sig::domain
