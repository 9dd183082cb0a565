#pragma once
// What every room of an instance shares: the executors, the adapters and
// the instance's identity. Owned by the instance; rooms hold a reference.
#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "ports/event_store.hpp"
#include "service/room/held_peers.hpp"
#include "service/metrics.hpp"
#include "ports/presence_store.hpp"

namespace spdlog { class logger; }

namespace sig::service {

class room_directory;
class room_holdings;

struct room_context {
  boost::asio::io_context& io;
  // Blocking NATS work (flushes, replays, catch-ups): never on `io`.
  boost::asio::thread_pool& blocking;
  event_store& store;
  presence_store* cache;  // null: running without Redis
  room_directory& directory;
  metrics& counters;
  std::shared_ptr<spdlog::logger> logger;
  std::string instance_id;
  held_peers* held = nullptr;  // null: nobody asks
  // The rooms this instance follows, recorded where survivors find them if
  // it dies (null: not recorded, e.g. in unit tests).
  room_holdings* holdings = nullptr;
  // How long an empty room keeps following the stream before it lets go.
  std::chrono::milliseconds linger{10'000};
  // How long after an acknowledged append its event may take to come back
  // on the live feed before the room catches up from the stream.
  std::chrono::milliseconds echo_timeout{1'000};
  // nats-server 2.9 now and then republishes a message a few microseconds
  // after a later one. A hole in the live feed is given this long to fill
  // before the room catches up from the stream.
  std::chrono::milliseconds reorder_window{25};
  // Message ids are <instance>.<process nonce>.<counter>: JetStream drops a
  // message whose id it saw within its duplicate window, so a restarted
  // instance with the same id must never reuse its predecessor's ids.
  std::string message_id_prefix;
  // A room snapshot goes to the stream each time a room's event count
  // reaches a multiple of this (0: never), so that rebuilding a room reads
  // at most this many events after the newest snapshot.
  std::uint64_t snapshot_every = 1000;
  // Members a room may hold (joins past it get `room-full`).
  std::size_t max_room_peers = 100;
  // A room's first join on this instance is appended right behind the
  // rebuild's reads instead of after them (one round trip to NATS, not
  // two). Only where the server stores each publish inline, in the order
  // it came (a lone nats-server): then the holdings record, published
  // first, is stored first, as a dead instance's expiry needs. Set by the
  // instance from what the stream's info says; a JetStream cluster stores
  // through a Raft group per stream, with no order between the two.
  std::atomic<bool> first_join_before_rebuild{false};
  // Rooms of this instance being rebuilt now. While any is, a first join
  // waits for its rebuild after all: in a burst of joins into new rooms,
  // which reach the other instances at the same moment, a rebuild's head
  // would often find the other instances' early joins already stored and
  // read them back one by one, work a burst cannot spare (measured without
  // this: a 400-join burst's p99 rose from 70-77 to 86-89 ms).
  std::atomic<int> rebuilds_in_flight{0};
  // Resume (docs/protocol.md `resume`). Empty secret: no tokens are issued and
  // a resume is refused. A peer whose connection dropped stays a member
  // for `resume_grace`; its token is good for `resume_token_lifetime`.
  std::string resume_secret;
  std::chrono::milliseconds resume_grace{30'000};
  std::chrono::seconds resume_token_lifetime{24 * 3600};
  // Fault injection for tests: drop every Nth live message (0: never), so
  // that gap detection and catch-up run on demand.
  std::uint64_t drop_live_every = 0;
  // ... and hold every Nth for 3 ms, so that later ones overtake it.
  std::uint64_t delay_live_every = 0;
  std::atomic<std::uint64_t> live_seen{0};
  std::atomic<std::uint64_t> next_message_id{0};
};

}  // namespace sig::service
