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
#include "bench/bench_protocol.hpp"

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
  std::atomic<int> status{0};            // 0 connecting, 1 open (and ready), 2 failed, 3 closed
  std::string peer_id;                   // strand, before `joins`
  std::atomic<bool> joining{false};
  std::atomic<bool> leaving{false};
  std::atomic<std::int64_t> join_sent_ns{0};
  std::int64_t join_ns = -1;             // strand, before `joins`
  std::string join_error;                // strand, before `joins`
};
using peer_ptr = std::shared_ptr<peer_conn>;
using room_list = std::vector<std::vector<peer_ptr>>;

// What became of each signal of a step, by its number n (1..total), as far
// as the bench saw: acknowledged or refused by the server (with
// --signal-acks), and delivered, once or more. Read after the run's last
// wait, it tells apart what was lost after an acknowledgement (which must
// never happen) from what was refused or never answered.
struct signal_ledger {
  // unconfirmed: answered `unavailable` with "may still be delivered".
  static constexpr std::uint8_t acked = 1, refused = 2, delivered = 4, unconfirmed = 8;
  std::vector<std::uint8_t> state;  // index n; 0 unused
  std::uint64_t duplicates = 0;     // deliveries of a signal already delivered

  void mark(std::uint64_t n, std::uint8_t bit) {
    if (n == 0 || n >= state.size()) return;
    if (bit == delivered && (state[n] & delivered) != 0) ++duplicates;
    state[n] |= bit;
  }
};

// What io threads report to the main thread.
struct hub {
  explicit hub(wire_protocol const& p) : protocol(p) {}

  wire_protocol const& protocol;  // how this run's system speaks
  steady::time_point epoch = steady::now();
  client_counters counters;
  tally settled;  // connections opened or failed
  tally closed;
  tally joins;    // joined or refused
  tally acks;
  tally pacer_done;
  tally unsent_dropped;  // clients done with drop_unsent

  std::atomic<std::uint64_t> received{0};  // signals of the current step
  std::atomic<std::uint64_t> unexpected_closes{0};
  std::atomic<std::uint64_t> bad_frames{0};

  std::mutex mutex;  // guards what follows
  std::uint64_t step = 0;
  std::vector<std::int64_t> samples;
  std::vector<std::uint64_t> sample_numbers;      // n of each sample, same order
  std::uint64_t stale = 0;                        // signals of another step
  std::map<std::uint64_t, std::uint64_t> late;    // step -> signals that came after its drain
  std::uint64_t errors = 0;  // of the current step
  std::map<std::string, std::uint64_t> error_codes;
  // step -> refusals of its signals that came after it ended, by code
  std::map<std::uint64_t, std::map<std::string, std::uint64_t>> late_refusals;
  std::string first_close_reason;
  std::map<std::uint64_t, signal_ledger> ledgers;  // step -> its signals

  // Room for the signals 1..total of `signal_step`; a step too large to
  // follow one by one (over 50 million signals) gets no ledger.
  void open_ledger(std::uint64_t signal_step, std::uint64_t total) {
    if (total > 50'000'000) return;
    std::lock_guard lock(mutex);
    ledgers[signal_step].state.assign(total + 1, 0);
  }
  void mark_request(std::uint64_t request, std::uint8_t bit) {
    std::lock_guard lock(mutex);
    if (auto it = ledgers.find(request_step(request)); it != ledgers.end()) it->second.mark(request_number(request), bit);
  }

  std::int64_t now_ns() const { return std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - epoch).count(); }

  // --trace: every signal received, (step, n, arrival ns).
  bool tracing = false;
  std::vector<std::array<std::int64_t, 3>> trace;

  void record_signal(std::uint64_t signal_step, std::int64_t latency_ns, std::int64_t n = 0, std::int64_t at = 0) {
    std::lock_guard lock(mutex);
    if (tracing) trace.push_back({static_cast<std::int64_t>(signal_step), n, at});
    if (auto it = ledgers.find(signal_step); it != ledgers.end() && n > 0)
      it->second.mark(static_cast<std::uint64_t>(n), signal_ledger::delivered);
    if (signal_step != 0 && signal_step == step) {
      samples.push_back(latency_ns);
      sample_numbers.push_back(static_cast<std::uint64_t>(n));
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
  // A signal refused by the server, counted with the step that sent it: an
  // overload's refusals keep coming during the recovery step, and are not
  // the recovery's.
  void record_refusal(std::uint64_t request, std::string const& code) {
    std::lock_guard lock(mutex);
    auto signal_step = request_step(request);
    if (auto it = ledgers.find(signal_step); it != ledgers.end())
      it->second.mark(request_number(request),
                      code == unconfirmed_code ? signal_ledger::unconfirmed : signal_ledger::refused);
    if (signal_step == step) {
      ++errors;
      ++error_codes[code];
    } else {
      ++late_refusals[signal_step][code];
    }
  }
};

// Handles one frame from the server for `peer`, as h.protocol reads it.
// Runs on the peer's strand.
void on_frame(hub& h, peer_conn& peer, std::string_view frame);

// A decimal integer (a JSON number's text); 0 when it is not one.
std::int64_t parse_i64(std::string_view text);

}  // namespace sig::bench
