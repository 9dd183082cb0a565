#include "bench/bench_placement.hpp"

#include <algorithm>
#include <map>

namespace sig::bench {

assignment assign_rooms(std::vector<std::string> const& instance_of, std::size_t room_count, std::size_t room_size,
                        std::set<std::string> const& allowed) {
  std::map<std::string, std::vector<std::size_t>> buckets;
  for (std::size_t i = 0; i < instance_of.size(); ++i)
    if (allowed.count(instance_of[i]) != 0) buckets[instance_of[i]].push_back(i);
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
