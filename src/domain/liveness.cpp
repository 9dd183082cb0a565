#include "domain/liveness.hpp"

namespace sig::domain {

void liveness::heartbeat(std::string const& instance, std::uint64_t revision, clock::time_point now) {
  auto [it, inserted] = instances_.try_emplace(instance, seen{revision, now, false});
  if (!inserted && it->second.revision != revision) it->second = seen{revision, now, false};
}

void liveness::goodbye(std::string const& instance) { instances_.erase(instance); }

std::vector<std::string> liveness::newly_dead(clock::time_point now) {
  std::vector<std::string> out;
  for (auto& [id, s] : instances_) {
    if (s.reported_dead || now - s.changed < timeout_) continue;
    s.reported_dead = true;
    out.push_back(id);
  }
  return out;
}

bool liveness::alive(std::string const& instance, clock::time_point now) const {
  auto it = instances_.find(instance);
  return it != instances_.end() && now - it->second.changed < timeout_;
}

std::vector<std::string> liveness::alive_instances(clock::time_point now) const {
  std::vector<std::string> out;
  for (auto const& [id, s] : instances_)
    if (now - s.changed < timeout_) out.push_back(id);
  return out;
}

std::size_t liveness::alive_count(clock::time_point now) const {
  std::size_t n = 0;
  for (auto const& [id, s] : instances_)
    if (now - s.changed < timeout_) ++n;
  return n;
}

std::string expiry_message_id(std::string_view room_token, std::string_view peer, std::uint64_t join_seq) {
  std::string id = "expire.";
  id += room_token;
  id += '.';
  id += peer;
  id += '.';
  id += std::to_string(join_seq);
  return id;
}

}  // namespace sig::domain
