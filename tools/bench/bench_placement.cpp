#include "bench/bench_placement.hpp"

#include <algorithm>
#include <map>

namespace sig::bench {

namespace {

assignment assign_together(std::map<std::string, std::vector<std::size_t>> buckets, std::size_t room_count,
                           std::size_t room_size) {
  assignment out;
  for (std::size_t r = 0; r < room_count; ++r) {
    std::vector<std::size_t>* fullest = nullptr;
    for (auto& [instance, left] : buckets)
      if (left.size() >= room_size && (fullest == nullptr || left.size() > fullest->size())) fullest = &left;
    if (fullest == nullptr) break;  // no instance has a whole room left
    std::vector<std::size_t> room(fullest->end() - static_cast<std::ptrdiff_t>(room_size), fullest->end());
    fullest->resize(fullest->size() - room_size);
    ++out.fully_spread;
    out.rooms.push_back(std::move(room));
  }
  return out;
}

}  // namespace

assignment assign_rooms(std::vector<std::string> const& instance_of, std::size_t room_count, std::size_t room_size,
                        std::set<std::string> const& allowed, bool together) {
  std::map<std::string, std::vector<std::size_t>> buckets;
  for (std::size_t i = 0; i < instance_of.size(); ++i)
    if (allowed.count(instance_of[i]) != 0) buckets[instance_of[i]].push_back(i);
  if (together) return assign_together(std::move(buckets), room_count, room_size);
  std::size_t spread_target = std::min(room_size, allowed.size());
  assignment out;
  for (std::size_t r = 0; r < room_count; ++r) {
    std::vector<std::size_t> room;
    std::set<std::string> used;
    while (room.size() < room_size) {
      std::string best;
      std::size_t best_left = 0;
      bool best_unused = false;
      for (auto const& [instance, left] : buckets) {
        if (left.empty()) continue;
        bool unused = used.count(instance) == 0;
        if (best.empty() || (unused && !best_unused) || (unused == best_unused && left.size() > best_left)) {
          best = instance;
          best_left = left.size();
          best_unused = unused;
        }
      }
      if (best.empty()) break;
      room.push_back(buckets[best].back());
      buckets[best].pop_back();
      used.insert(best);
    }
    if (room.size() < room_size) break;  // not enough connections left
    if (used.size() >= spread_target) ++out.fully_spread;
    out.rooms.push_back(std::move(room));
  }
  return out;
}

}  // namespace sig::bench
