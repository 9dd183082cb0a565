#include "bench/bench_pacer.hpp"

#include <fmt/format.h>

#include <boost/asio/post.hpp>

#include <algorithm>

namespace sig::bench {

namespace asio = boost::asio;
using namespace std::chrono_literals;

pacer::pacer(asio::io_context& io, hub& h, std::vector<send_pair> pairs, double rate, std::chrono::milliseconds duration,
             std::uint64_t step, std::size_t payload_bytes, bool acks)
    : strand_(asio::make_strand(io)),
      timer_(strand_),
      hub_(h),
      pairs_(std::move(pairs)),
      rate_(rate),
      duration_(duration),
      step_(step),
      padding_(payload_bytes, 'x'),
      acks_(acks),
      per_pair_(pairs_.size(), 0) {
  total_ = pairs_.empty() ? 0 : static_cast<std::uint64_t>(rate * std::chrono::duration<double>(duration).count());
}

void pacer::start() {
  asio::post(strand_, [self = shared_from_this()] {
    self->start_ = steady::now();
    self->tick();
  });
}

// Sends what is due by now, then sleeps until the next signal is due (at
// least 1 ms, so high rates go out in small batches).
void pacer::tick() {
  auto now = steady::now();
  double elapsed = std::chrono::duration<double>(now - start_).count();
  auto due = std::min<std::uint64_t>(total_, static_cast<std::uint64_t>(rate_ * elapsed));
  if (now - start_ >= duration_) due = total_;
  if (due > created_) {
    double scheduled = static_cast<double>(created_) / rate_;
    max_lag_ms_ = std::max(max_lag_ms_, (elapsed - scheduled) * 1e3);
  }
  while (created_ < due) {
    std::size_t index = created_ % pairs_.size();
    auto const& pair = pairs_[index];
    ++per_pair_[index];
    ++created_;
    auto sent_at = hub_.now_ns();
    if (hub_.tracing) sent_.push_back({static_cast<std::int64_t>(created_), static_cast<std::int64_t>(index), sent_at});
    auto data = fmt::format(R"({{"k":{},"t":{},"n":{},"p":"{}"}})", step_, sent_at, created_, padding_);
    pair.sender->client->send(
        hub_.protocol.signal(pair.target_id, data, acks_ ? signal_request(step_, created_) : 0));
  }
  if (created_ >= total_) {
    seconds_ = std::chrono::duration<double>(steady::now() - start_).count();
    hub_.pacer_done.add();
    return;
  }
  auto next = start_ + std::chrono::duration_cast<steady::duration>(
                           std::chrono::duration<double>(static_cast<double>(created_ + 1) / rate_));
  timer_.expires_at(std::max(next, now + 1ms));
  timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec) self->tick();
  });
}

}  // namespace sig::bench
