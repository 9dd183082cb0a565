#pragma once
// The port between a room and the event log: what a room needs from the
// stream of events, with no NATS type in sight. The NATS adapter
// (adapters/nats/nats_event_store) implements it for instances; unit tests
// use an in-memory store.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "domain/room_name.hpp"
#include "ports/stored_format.hpp"

namespace sig::service {

// Why an append failed: one code the service acts on (answer `unavailable`
// at once, retry, tell the client to send it again with the same id);
// `detail` carries the store's own words, for logs.
enum class append_error {
  not_connected = 1,  // the store is unreachable right now
  overloaded,         // refused at once: too many appends in flight, or the oldest waited too long
  timed_out,          // no acknowledgement within the timeout: it may be stored all the same
  unconfirmed,        // answered "a duplicate", and the stream could not show the stored copy
  refused,            // the store answered no (JetStream's error, no stream for the subject)
  failed,             // the store's client could not send it
  closing,            // the store is closing
};
std::error_category const& append_category();
inline std::error_code make_error_code(append_error e) { return {static_cast<int>(e), append_category()}; }
// The same code as a condition: a store's own codes (a nats.c timeout) can
// be equivalent to it, which an error_code of this category cannot show:
// `ec == append_condition(append_error::timed_out)`.
inline std::error_condition append_condition(append_error e) { return {static_cast<int>(e), append_category()}; }

}  // namespace sig::service

template <>
struct std::is_error_code_enum<sig::service::append_error> : std::true_type {};

namespace sig::service {

struct append_result {
  bool ok = false;
  std::uint64_t seq = 0;
  bool duplicate = false;   // the log had it already (same message id): a retry of a stored event
  std::error_code error;    // set when !ok
  std::string detail;       // the store's words about the error
  // Stored or not is unknown: the client should send it again, with the
  // same id, and hear then.
  bool outcome_unknown() const { return error == append_error::timed_out || error == append_error::unconfirmed; }
};

// A stored event as the live feed delivers it: its sequence, and the
// previous sequence of the same subject (0: the first), which proves that
// nothing between the two was missed.
struct live_message {
  std::uint64_t seq = 0;
  std::uint64_t previous_subject_seq = 0;
  std::string payload;
};

struct stored_message {
  std::uint64_t seq = 0;
  std::string payload;
};

// Which appends the in-flight bound may refuse. Requests (joins, signals)
// can be answered `unavailable` and tried again by the client; records of
// membership (leaves, resumes, expiries) must be written, so they are never
// refused for load, only failed by errors.
enum class append_kind { request, membership };

// Following a room's live feed; stops when destroyed. A message callback
// already running may still finish, so callbacks hold weak references.
class live_follow {
 public:
  virtual ~live_follow() = default;
};

// Blocking reads of a room's stored events: on a worker thread, never on
// an I/O thread.
class event_reads {
 public:
  virtual ~event_reads() = default;
  // How the bytes read here (and appended) are to be read and written.
  virtual stored_format const& format() const = 0;
  // Newest sequence on `subject`; 0 if none; nullopt on error.
  virtual std::optional<std::uint64_t> last_seq(std::string const& subject) = 0;
  // Messages on `subject` with from <= seq <= to, in order; nullopt on error.
  virtual std::optional<std::vector<stored_message>> read(std::string const& subject, std::uint64_t from,
                                                          std::uint64_t to) = 0;
  // The newest message on `subject` (seq 0 if none); nullopt on error.
  virtual std::optional<stored_message> last_message(std::string const& subject) = 0;
};

class event_store : public event_reads {
 public:

  virtual domain::room_subjects subjects(std::string const& room_token) const = 0;
  // Connected, and the stream usable.
  virtual bool ready() const = 0;

  // --- Non-blocking: safe on an I/O thread.
  // `done` runs later, on any thread (hand it off). `msg_id` makes a retry
  // within the duplicate window a no-op.
  virtual void append(std::string const& subject, std::string payload, std::string msg_id, append_kind kind,
                      std::function<void(append_result)> done) = 0;
  // `on_message` runs on the store's own executor, in the feed's order.
  virtual std::unique_ptr<live_follow> follow(std::string const& room_token,
                                              std::function<void(live_message)> on_message) = 0;
  // The newest sequence on `subject` (0 if none), read after every follow()
  // made before this call, so that whatever the read misses arrives live:
  // a room's first join needs nothing else from the stream when the room
  // is new or the presence cache is current. `done` runs later, on any
  // thread (hand it off); nullopt on error. False, and `done` never runs,
  // when the store cannot read without blocking: then settle_follows() and
  // last_seq() on a worker.
  virtual bool head_after_follows(std::string const& subject,
                                  std::function<void(std::optional<std::uint64_t>)> done) = 0;
  // Short reads without a worker, one message each, for a room with only a
  // few events to read (read_events_async): the newest message on
  // `subject`, and the first on `subject` with a sequence >= `from`. The
  // message has seq 0 when there is none; nullopt on error. `done` runs
  // later, on any thread (hand it off). False, and `done` never runs, when
  // the store cannot read without blocking (then the blocking reads).
  virtual bool read_newest(std::string const& subject,
                           std::function<void(std::optional<stored_message>)> done) = 0;
  virtual bool read_next(std::string const& subject, std::uint64_t from,
                         std::function<void(std::optional<stored_message>)> done) = 0;

  // --- Blocking: on a worker thread, never on an I/O thread.
  // Once this returns true, every follow() made before it receives all
  // that is stored from now on.
  virtual bool settle_follows() = 0;
  // Stores a room snapshot that replaces the subject's previous one.
  virtual bool put_snapshot(std::string const& subject, std::string const& payload, std::string const& msg_id) = 0;
};

}  // namespace sig::service
