#include "app/drain.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/post.hpp>

#include "adapters/nats/appender.hpp"
#include "server/session_registry.hpp"
#include "service/room/held_peers.hpp"
#include "service/metrics.hpp"
#include "service/room/room_directory.hpp"

namespace sig::app {

namespace asio = boost::asio;

drain::drain(parts p) : p_(std::move(p)), strand_(asio::make_strand(p_.io)), timer_(strand_) {}

void drain::start() {
  auto self = shared_from_this();
  p_.sessions.on_empty([self] { self->poke(); });
  p_.held.on_empty([self] { self->poke(); });
  asio::post(strand_, [self] {
    self->timer_.expires_after(self->p_.grace);
    self->timer_.async_wait([self](boost::system::error_code ec) {
      if (!ec) self->on_grace_over();
    });
    self->check();
  });
}

void drain::poke() {
  asio::post(strand_, [self = shared_from_this()] { self->check(); });
}

// Runs on the strand: after start, and whenever sessions or held peers run
// out. Everyone moved: wait for the appends in flight (a resume elsewhere
// may still be recording). After the grace period, only the leaves being
// recorded are waited for.
void drain::check() {
  if (done_ || waiting_for_appends_) return;
  bool moved = p_.sessions.empty() && p_.held.empty();
  if (!moved && !(late_ && p_.held.empty())) return;
  waiting_for_appends_ = true;
  moved_ = moved;
  p_.appends.when_idle([self = shared_from_this(), moved] {
    asio::post(self->strand_, [self, moved] { self->finish(moved); });
  });
}

void drain::on_grace_over() {
  if (done_) return;
  if (late_) {  // the leaves (or the appends of those who moved) had their two seconds
    finish(moved_);
    return;
  }
  late_ = true;
  if (!waiting_for_appends_) {
    p_.log->warn("drain: {} peers did not resume elsewhere within {} ms; recording their leave",
                 p_.counters.joined_peers.load() + p_.counters.detached_peers.load(), p_.grace.count());
    p_.directory.disconnect_all();
  }
  timer_.expires_after(std::chrono::seconds(2));  // for those appends
  timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec) self->on_grace_over();
  });
  check();
}

void drain::finish(bool moved) {
  if (done_) return;
  done_ = true;
  timer_.cancel();
  p_.sessions.on_empty(nullptr);
  p_.held.on_empty(nullptr);
  p_.log->info("drain done: {} peers moved", moved ? "all" : "not all");
  p_.done();
}

}  // namespace sig::app
