#pragma once
// Single stored messages read with JetStream direct gets sent as core
// requests on the data connection: no worker thread, no round trip waited
// for, many in flight at once (a burst of first joins). Three reads: a
// subject's newest sequence (a room's head), its newest message (a room's
// stream snapshot), and its first message at or after a sequence (a room's
// few events after a snapshot, one read each).
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

#include "ports/event_store.hpp"

struct __natsMsg;
struct __natsSubscription;

namespace sig::nats {

class connection;

class direct_reader {
 public:
  // A message read (seq 0: none stored); nullopt on error or after the timeout.
  using message_callback = std::function<void(std::optional<service::stored_message>)>;
  using head_callback = std::function<void(std::optional<std::uint64_t>)>;

  direct_reader(connection& conn, std::chrono::milliseconds timeout, std::function<void(__natsMsg*)> spent);
  ~direct_reader();
  direct_reader(direct_reader const&) = delete;
  direct_reader& operator=(direct_reader const&) = delete;

  // Subscribes to the inbox (after the connection is open).
  bool start();

  // The stream must allow direct gets.
  // The newest sequence stored on `subject` (0: none).
  void read_head(std::string const& stream, std::string const& subject, head_callback done);
  // The newest message stored on `subject`.
  void read_newest(std::string const& stream, std::string const& subject, message_callback done);
  // The first message stored on `subject` with a sequence >= `from`.
  void read_next(std::string const& stream, std::string const& subject, std::uint64_t from, message_callback done);

  // A message of the connection: true if it answered a read (then handled
  // and handed to `spent`).
  bool take(__natsMsg* msg);
  void expire_overdue(std::chrono::steady_clock::time_point now);
  void fail_all();

 private:
  void send(std::string const& request, std::string_view body, std::string const& subject, message_callback done);
  void settle(std::uint64_t token, std::optional<service::stored_message> answer);
  void fail(std::error_code ec, std::string_view what) const;

  connection& conn_;
  std::chrono::milliseconds timeout_;
  std::function<void(__natsMsg*)> spent_;
  std::string inbox_;  // "<_INBOX.nuid>."
  __natsSubscription* inbox_sub_ = nullptr;

  std::mutex mutex_;
  std::uint64_t next_token_ = 0;
  std::unordered_map<std::uint64_t, message_callback> pending_;
  std::deque<std::pair<std::chrono::steady_clock::time_point, std::uint64_t>> deadlines_;  // in time order
};

}  // namespace sig::nats
