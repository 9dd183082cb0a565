#include "adapters/nats/data_connection.hpp"

#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include <boost/asio/bind_executor.hpp>

namespace sig::nats {

namespace {
// How often acknowledgement deadlines are checked: they are seconds long.
// Spent messages are destroyed then too, whatever their number.
constexpr std::chrono::milliseconds tick_interval{100};
// nats.c hands every destroyed message to its collector thread and wakes
// that thread when its list was empty: destroyed one read pass at a time,
// that is a wake-up (and contention for malloc's lock) per pass. In
// batches of this many, or every tick, it is a few per second.
constexpr std::size_t spent_batch = 512;
// How long writes are held back before the log says so.
constexpr std::chrono::seconds held_writes_notice{1};
}  // namespace

data_connection::data_connection(boost::asio::io_context& io, connection_settings settings,
                                 std::string subject_prefix, appender_settings appends,
                                 std::shared_ptr<spdlog::logger> log)
    : loop_(io),
      conn_(std::move(settings), std::move(log)),
      appender_(conn_, appends, [this](natsMsg* m) { spent(m); }),
      live_(conn_, std::move(subject_prefix), [this](natsMsg* m) { spent(m); }),
      direct_(conn_, appends.ack_timeout, [this](natsMsg* m) { spent(m); }),
      ticker_(loop_.executor()) {}

data_connection::~data_connection() {
  close();
  destroy_spent(0);
}

bool data_connection::open(std::atomic<bool> const& stop) {
  loop_.set_message_handler(
      [this](natsMsg* msg) { return appender_.take(msg) || live_.take(msg) || direct_.take(msg); },
      [this] {
        if (!loop_.inline_delivery()) live_.drain_queued();
        destroy_spent(spent_batch);
      });
  if (!conn_.open(stop, &loop_)) return false;
  if (!appender_.start(false) || !direct_.start()) return false;
  if (!loop_.inline_delivery())
    conn_.log().warn("this libnats has no inline message filter: live messages are queued and drained per read "
                     "(slower; see docs/threading.md)");
  open_ = true;
  boost::asio::post(loop_.executor(), [this] { tick(); });
  return true;
}

void data_connection::tick() {
  if (!open_) return;
  auto now = std::chrono::steady_clock::now();
  appender_.expire_overdue(now);
  direct_.expire_overdue(now);
  destroy_spent(0);
  notice_held_writes(now);
  ticker_.expires_after(tick_interval);
  ticker_.async_wait([this](boost::system::error_code ec) {
    if (!ec) tick();
  });
}

// Over TLS the loop holds writes back while the socket cannot take them
// (event_loop.hpp): NATS is not reading. Said once it lasts, and when it ends.
void data_connection::notice_held_writes(std::chrono::steady_clock::time_point now) {
  auto since = loop_.writes_held_since();
  if (since && !said_held_since_ && now - *since >= held_writes_notice) {
    conn_.log().warn("NATS has not taken this instance's writes for 1 s: the server is not reading its socket "
                     "(stalled or overloaded); joins and signals are refused until it does");
    said_held_since_ = since;
  } else if (!since && said_held_since_) {
    conn_.log().info("NATS takes this instance's writes again, after {} ms",
                     std::chrono::duration_cast<std::chrono::milliseconds>(now - *said_held_since_).count());
    said_held_since_.reset();
  }
}

void data_connection::close() {
  if (!open_.exchange(false)) {
    conn_.close();
    return;
  }
  boost::system::error_code ec;
  ticker_.cancel();
  conn_.close();
  appender_.fail_all("closing");
  direct_.fail_all();
}

bool data_connection::flush() {
  return conn_.handle() != nullptr && natsConnection_FlushTimeout(conn_.handle(), 5000) == NATS_OK;
}

void data_connection::spent(natsMsg* msg) {
  std::lock_guard lock(spent_mutex_);
  spent_.push_back(msg);
}

void data_connection::destroy_spent(std::size_t at_least) {
  std::vector<natsMsg*> batch;
  {
    std::lock_guard lock(spent_mutex_);
    if (spent_.size() < at_least || spent_.empty()) return;
    batch.swap(spent_);
    spent_.reserve(batch.size());
  }
  for (auto* m : batch) natsMsg_Destroy(m);
}

}  // namespace sig::nats
