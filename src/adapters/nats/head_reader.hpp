#pragma once
// The newest sequence of a subject, read with a JetStream direct get sent
// as a core request on the data connection: no worker thread, no round
// trip waited for, many in flight at once (a burst of first joins).
//
// Sent on the connection the live feed subscribes on, a read goes to the
// server after every subscription made before it, and the server handles
// a connection's messages in order: whatever was stored after the read is
// republished to those subscriptions. That is what a room's rebuild needs
// (the head it reads up to, and the live feed from there), and why no
// flush is needed before it.
//
// Answers come back on one inbox subscription, `<inbox>.<n>`, offered by
// the data connection's loop (take()). Thread-safe; `done` runs on the
// loop's thread, or on the caller's if the read cannot be sent.
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>

struct __natsMsg;
struct __natsSubscription;

namespace sig::nats {

class connection;

class head_reader {
 public:
  using callback = std::function<void(std::optional<std::uint64_t>)>;

  head_reader(connection& conn, std::chrono::milliseconds timeout, std::function<void(__natsMsg*)> spent);
  ~head_reader();
  head_reader(head_reader const&) = delete;
  head_reader& operator=(head_reader const&) = delete;

  // Subscribes to the inbox (after the connection is open).
  bool start();

  // `done(seq)`: the newest sequence stored on `subject` in `stream` (0:
  // none); nullopt on error or after the timeout. The stream must allow
  // direct gets.
  void read(std::string const& stream, std::string const& subject, callback done);

  // A message of the connection: true if it answered a read (then handled
  // and handed to `spent`).
  bool take(__natsMsg* msg);
  void expire_overdue(std::chrono::steady_clock::time_point now);
  void fail_all();

 private:
  void settle(std::uint64_t token, std::optional<std::uint64_t> head);
  void fail(std::error_code ec, std::string_view what) const;

  connection& conn_;
  std::chrono::milliseconds timeout_;
  std::function<void(__natsMsg*)> spent_;
  std::string inbox_;  // "<_INBOX.nuid>."
  __natsSubscription* inbox_sub_ = nullptr;

  std::mutex mutex_;
  std::uint64_t next_token_ = 0;
  std::unordered_map<std::uint64_t, callback> pending_;
  std::deque<std::pair<std::chrono::steady_clock::time_point, std::uint64_t>> deadlines_;  // in time order
};

}  // namespace sig::nats
