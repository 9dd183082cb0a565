#pragma once
// Grouping connections into rooms by the instance each landed on. Pure.
#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace sig::bench {

// Rooms from connections whose instance is known: each room takes its peers
// from as many different instances as it can (or, `together`, all from
// one), picking the instance with the most connections left first, so
// leftovers stay balanced.
struct assignment {
  std::vector<std::vector<std::size_t>> rooms;
  std::uint64_t fully_spread = 0;  // rooms placed as asked: on distinct instances, or all on one
};

assignment assign_rooms(std::vector<std::string> const& instance_of, std::size_t room_count, std::size_t room_size,
                        std::set<std::string> const& allowed, bool together = false);

}  // namespace sig::bench
