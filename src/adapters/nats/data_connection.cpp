#include "adapters/nats/data_connection.hpp"

#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include <boost/asio/bind_executor.hpp>

namespace sig::nats {

namespace {
// How often acknowledgement deadlines are checked: they are seconds long.
constexpr std::chrono::milliseconds tick_interval{100};
}  // namespace

data_connection::data_connection(boost::asio::io_context& io, connection_settings settings,
                                 std::string subject_prefix, appender_settings appends,
                                 std::shared_ptr<spdlog::logger> log)
    : loop_(io),
      conn_(std::move(settings), std::move(log)),
      appender_(conn_, appends, [this](natsMsg* m) { spent(m); }),
      live_(conn_, std::move(subject_prefix), [this](natsMsg* m) { spent(m); }),
      ticker_(loop_.executor()) {}

data_connection::~data_connection() {
  close();
  destroy_spent();
}

bool data_connection::open(std::atomic<bool> const& stop) {
  loop_.set_message_handler(
      [this](natsMsg* msg) { return appender_.take(msg) || live_.take(msg); },
      [this] {
        if (!loop_.inline_delivery()) live_.drain_queued();
        destroy_spent();
      });
  if (!conn_.open(stop, &loop_)) return false;
  if (!appender_.start(false)) return false;
  if (!loop_.inline_delivery())
    conn_.log().warn("this libnats has no inline message filter: live messages are queued and drained per read "
                     "(slower; see docs/threading.md)");
  open_ = true;
  boost::asio::post(loop_.executor(), [this] { tick(); });
  return true;
}

void data_connection::tick() {
  if (!open_) return;
  appender_.expire_overdue(std::chrono::steady_clock::now());
  destroy_spent();
  ticker_.expires_after(tick_interval);
  ticker_.async_wait([this](boost::system::error_code ec) {
    if (!ec) tick();
  });
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
}

bool data_connection::flush() {
  return conn_.handle() != nullptr && natsConnection_FlushTimeout(conn_.handle(), 5000) == NATS_OK;
}

void data_connection::spent(natsMsg* msg) {
  std::lock_guard lock(spent_mutex_);
  spent_.push_back(msg);
}

// nats.c hands each destroyed message to its collector thread and wakes
// that thread when its list was empty: one at a time, a wake-up each.
void data_connection::destroy_spent() {
  std::vector<natsMsg*> batch;
  {
    std::lock_guard lock(spent_mutex_);
    batch.swap(spent_);
  }
  for (auto* m : batch) natsMsg_Destroy(m);
}

}  // namespace sig::nats
