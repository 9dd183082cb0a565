#pragma once
// Appends to the stream as plain core publishes with a reply subject: the
// stream stores any message published on its subjects and answers on the
// reply subject (a PubAck), which is all js_PublishMsgAsync does, minus its
// per-message bookkeeping and its delivery thread. Many appends are in
// flight at once (pipelined on one connection); the acknowledgements come
// back on one inbox subscription, `<inbox>.<n>`, matched to their append by
// `n`.
//
// Bounded: at most `max_in_flight` request appends wait for their
// acknowledgement, and none is taken while the oldest has waited more than
// `max_delay`; past either, a request is refused at once (overloaded), so
// overload turns into `unavailable` answers instead of a queue that grows
// until acknowledgements time out and retries pile on. Records of
// membership are never refused for load.
//
// Thread-safe. Acknowledgements are handled by whoever reads the inbox
// (the data connection's loop, or a nats.c thread for tools); `done` runs
// on that thread, or on the caller's for an immediate refusal.
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_map>
#include <vector>

#include "ports/event_store.hpp"

struct __natsConnection;
struct __natsMsg;
struct __natsSubscription;

namespace sig::nats {

class connection;

struct appender_settings {
  std::size_t max_in_flight = 256;
  // Requests are refused too while the oldest append has waited longer
  // than this for its acknowledgement (0: no such limit). Acknowledgements
  // and live messages share the connection, so a late acknowledgement
  // means that NATS, or this instance's own reading, is behind: taking
  // more would only lengthen the queue every peer waits in.
  std::chrono::milliseconds max_delay{250};
  std::chrono::milliseconds ack_timeout{5000};
};

class appender {
 public:
  // `spent`: where published and received natsMsgs go to be destroyed in
  // batches (nats.c wakes its collector thread for each lone destroy).
  appender(connection& conn, appender_settings settings, std::function<void(__natsMsg*)> spent);
  ~appender();
  appender(appender const&) = delete;
  appender& operator=(appender const&) = delete;

  // Subscribes to the inbox (after the connection is open). With `queued`,
  // acknowledgements arrive through nats.c's own delivery thread (tools);
  // otherwise the caller offers every message to take() (event loop).
  bool start(bool queued);

  // An empty `msg_id` sends no dedup header. `kv_operation` ("DEL") marks
  // a key-value delete (a publish on a bucket's subject).
  void append(std::string const& subject, std::string_view payload, std::string const& msg_id,
              service::append_kind kind, std::function<void(service::append_result)> done,
              char const* kv_operation = nullptr);

  // A message of the connection: true if it was an acknowledgement (then
  // handled and handed to `spent`).
  bool take(__natsMsg* msg);
  // Fails the appends whose acknowledgement is overdue. A late one finds
  // nothing pending and is dropped.
  void expire_overdue(std::chrono::steady_clock::time_point now);
  // Fails every pending append (closing).
  void fail_all(std::string const& why);

  std::size_t in_flight() const;
  // Runs `callback` once nothing is in flight: at once (on this thread) if
  // nothing is, else on the thread that settles the last one.
  void when_idle(std::function<void()> callback);
  std::uint64_t refused_for_load() const { return refused_for_load_; }
  std::uint64_t refused_for_delay() const { return refused_for_delay_; }
  std::uint64_t timed_out() const { return timed_out_; }

 private:
  struct pending_append {
    std::function<void(service::append_result)> done;
    std::chrono::steady_clock::time_point deadline;
    bool request = true;
  };
  void settle(std::uint64_t token, service::append_result result, std::string const& stream = {});
  std::chrono::steady_clock::duration oldest_wait(std::chrono::steady_clock::time_point now);
  void fail(std::error_code ec, std::string_view what) const;
  static void on_queued_message(__natsConnection*, __natsSubscription*, __natsMsg* msg, void* closure);

  connection& conn_;
  appender_settings settings_;
  std::function<void(__natsMsg*)> spent_;
  std::string inbox_;  // "<_INBOX.nuid>." : acknowledgements come to <inbox_><token>
  __natsSubscription* inbox_sub_ = nullptr;

  mutable std::mutex mutex_;
  std::uint64_t next_token_ = 0;
  std::unordered_map<std::uint64_t, pending_append> pending_;
  std::size_t requests_in_flight_ = 0;
  std::vector<std::function<void()>> when_idle_;
  std::deque<std::pair<std::chrono::steady_clock::time_point, std::uint64_t>> deadlines_;  // in time order
  std::uint64_t refused_for_load_ = 0;
  std::uint64_t refused_for_delay_ = 0;
  std::uint64_t timed_out_ = 0;
  // The highest sequence an append was stored at: a lower one later means
  // the stream was made again, or restored from an older backup.
  std::unordered_map<std::string, std::uint64_t> highest_seq_;  // by stream
  bool went_back_ = false;
};

}  // namespace sig::nats
