#pragma once
// What the io threads of `sigstream-bench` share with its main thread: the
// connections, the counts the main thread waits on, and the signal samples.
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "bench/bench_client.hpp"

namespace sig::bench {

using steady = std::chrono::steady_clock;

// A count that io threads raise and the main thread waits on.
class tally {
 public:
  void add(std::uint64_t n = 1) {
    {
      std::lock_guard lock(mutex_);
      count_ += n;
    }
    changed_.notify_all();
  }
  std::uint64_t get() {
    std::lock_guard lock(mutex_);
    return count_;
  }
  bool wait_until(std::uint64_t target, steady::time_point deadline) {
    std::unique_lock lock(mutex_);
    return changed_.wait_until(lock, deadline, [&] { return count_ >= target; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::uint64_t count_ = 0;
};

// One bench connection. Fields marked "strand" are written on the client's
// strand and read by the main thread only after the tally that follows the
// write; fields marked "main" belong to the main thread.
struct peer_conn {
  std::size_t index = 0;                 // main
  std::shared_ptr<ws_client> client;     // main
  std::string instance;                  // strand, before `settled`
  std::atomic<int> status{0};            // 0 connecting, 1 open, 2 failed, 3 closed
  std::string peer_id;                   // strand, before `joins`
  std::atomic<bool> joining{false};
  std::atomic<bool> leaving{false};
  std::atomic<std::int64_t> join_sent_ns{0};
  std::int64_t join_ns = -1;             // strand, before `joins`
  std::string join_error;                // strand, before `joins`
};
using peer_ptr = std::shared_ptr<peer_conn>;
using room_list = std::vector<std::vector<peer_ptr>>;

// What io threads report to the main thread.
struct hub {
  steady::time_point epoch = steady::now();
  client_counters counters;
  tally settled;  // connections opened or failed
  tally closed;
  tally joins;    // joined or refused
  tally acks;
  tally pacer_done;

  std::atomic<std::uint64_t> received{0};  // signals of the current step
  std::atomic<std::uint64_t> unexpected_closes{0};
  std::atomic<std::uint64_t> bad_frames{0};

  std::mutex mutex;  // guards what follows
  std::uint64_t step = 0;
  std::vector<std::int64_t> samples;
  std::uint64_t stale = 0;                        // signals of another step
  std::map<std::uint64_t, std::uint64_t> late;    // step -> signals that came after its drain
  std::uint64_t errors = 0;
  std::map<std::string, std::uint64_t> error_codes;
  std::string first_close_reason;

  std::int64_t now_ns() const { return std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - epoch).count(); }

  // --trace: every signal received, (step, n, arrival ns).
  bool tracing = false;
  std::vector<std::array<std::int64_t, 3>> trace;

  void record_signal(std::uint64_t signal_step, std::int64_t latency_ns, std::int64_t n = 0, std::int64_t at = 0) {
    std::lock_guard lock(mutex);
    if (tracing) trace.push_back({static_cast<std::int64_t>(signal_step), n, at});
    if (signal_step != 0 && signal_step == step) {
      samples.push_back(latency_ns);
      received.fetch_add(1, std::memory_order_relaxed);
    } else {
      ++stale;
      if (signal_step != 0) ++late[signal_step];
    }
  }
  std::uint64_t stale_total() {
    std::lock_guard lock(mutex);
    return stale;
  }
  void record_error(std::string const& code) {
    std::lock_guard lock(mutex);
    ++errors;
    ++error_codes[code];
  }
};

// Handles one frame from the server for `peer`. Runs on the peer's strand.
void on_frame(hub& h, peer_conn& peer, std::string_view frame);

// A decimal integer (a JSON number's text); 0 when it is not one.
std::int64_t parse_i64(std::string_view text);

}  // namespace sig::bench
