#pragma once
// Sends signals at a fixed rate for a fixed time, on its own strand, in the
// hub's protocol. The send time travels in `data`, so the receiver's clock
// (the same process) gives the end-to-end latency. With acknowledgements,
// each signal's request id names its step and number (signal_request).
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_hub.hpp"

namespace sig::bench {

// A signal to send: from `sender` to the peer `target_id`, in room `room`.
struct send_pair {
  peer_ptr sender;
  std::string target_id;
  std::size_t room = 0;
  std::string target_instance;
};

class pacer : public std::enable_shared_from_this<pacer> {
 public:
  pacer(boost::asio::io_context& io, hub& h, std::vector<send_pair> pairs, double rate,
        std::chrono::milliseconds duration, std::uint64_t step, std::size_t payload_bytes, bool acks);

  // Sends until rate x duration signals are out, then raises h.pacer_done.
  void start();

  // Read by the main thread after pacer_done.
  std::uint64_t created() const { return created_; }
  std::uint64_t total() const { return total_; }
  double max_lag_ms() const { return max_lag_ms_; }  // how far sending fell behind schedule
  double seconds() const { return seconds_; }
  std::vector<std::uint64_t> const& per_pair() const { return per_pair_; }
  std::vector<std::array<std::int64_t, 3>> const& sent_trace() const { return sent_; }  // (n, pair, ns), --trace

 private:
  void tick();  // Runs on strand_.

  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::steady_timer timer_;
  hub& hub_;
  std::vector<send_pair> pairs_;
  double rate_;
  std::chrono::milliseconds duration_;
  std::uint64_t step_;
  std::string padding_;
  bool acks_;
  std::vector<std::uint64_t> per_pair_;
  std::vector<std::array<std::int64_t, 3>> sent_;
  std::uint64_t total_ = 0, created_ = 0;
  steady::time_point start_;
  double max_lag_ms_ = 0, seconds_ = 0;
};

}  // namespace sig::bench
