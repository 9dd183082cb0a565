#pragma once
// service::event_store in memory, for unit tests of the room: one stream of
// every room's events, sequences, deduplication by message id, and a live
// feed that republishes each stored event to the room's followers with the
// previous sequence of its subject, as JetStream's RePublish does. Knobs
// make it misbehave the ways NATS can: live copies held back (reordered),
// dropped, appends refused for load or failing.
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "adapters/codec/event_codec.hpp"
#include "domain/room_name.hpp"
#include "ports/event_store.hpp"

namespace sig::test {

class memory_event_store final : public service::event_store {
 public:
  struct stored {
    std::uint64_t seq;
    std::string subject;
    std::string payload;
  };

  // --- Knobs.
  // Hold the live copy of every Nth stored event until the next one went
  // out (so the two arrive swapped).
  std::uint64_t swap_every = 0;
  // Drop the live copy of every Nth stored event (a gap).
  std::uint64_t drop_every = 0;
  // Refuse request appends as overloaded / fail the next N appends of any kind.
  bool overloaded = false;
  int fail_next = 0;
  // Store the next N appends but report them timed out (an acknowledgement
  // lost in a failover, or a commit after quorum returned).
  int lose_ack_next = 0;
  // nats-server 2.9's duplicate answers after a leader change: the next N
  // appends with a message id are answered as duplicates of the head,
  // storing nothing; every duplicate answer's seq is moved by a shift.
  int phantom_duplicate_next = 0;
  std::int64_t duplicate_seq_shift = 0;
  bool connected = true;
  // Heads and a room's few events read only the blocking way (on a
  // worker), as over a stream without direct gets.
  bool blocking_reads = false;
  // Fail the next N short reads (read_newest, read_next) with an error.
  int fail_short_reads = 0;

  domain::room_subjects subjects(std::string const& token) const override {
    return domain::subjects_for_token("t", token);
  }
  bool ready() const override { return connected; }

  void append(std::string const& subject, std::string payload, std::string msg_id, service::append_kind kind,
              std::function<void(service::append_result)> done) override {
    std::vector<std::pair<std::function<void(service::live_message)>, service::live_message>> deliveries;
    service::append_result result;
    {
      std::lock_guard lock(mutex_);
      ++appends_;
      if (!connected) {
        result.error = service::append_error::not_connected;
      } else if (overloaded && kind == service::append_kind::request) {
        result.error = service::append_error::overloaded;
      } else if (fail_next > 0) {
        --fail_next;
        result.error = service::append_error::timed_out;
      } else if (phantom_duplicate_next > 0 && !msg_id.empty()) {
        --phantom_duplicate_next;
        result = {true, head_, true, {}, {}};
      } else if (auto dup = ids_.find(msg_id); !msg_id.empty() && dup != ids_.end()) {
        result = {true, static_cast<std::uint64_t>(static_cast<std::int64_t>(dup->second) + duplicate_seq_shift), true,
                  {}, {}};
      } else {
        std::uint64_t seq = ++head_;
        std::uint64_t previous = last_of_subject_[subject];
        last_of_subject_[subject] = seq;
        log_.push_back(stored{seq, subject, payload});
        if (!msg_id.empty()) ids_[msg_id] = seq;
        result = {true, seq, false, {}, {}};
        if (lose_ack_next > 0) {
          --lose_ack_next;
          result = {false, 0, false, service::append_error::timed_out, "Timeout"};
        }
        collect_live(subject, service::live_message{seq, previous, std::move(payload)}, deliveries);
      }
    }
    for (auto& [callback, message] : deliveries) callback(std::move(message));
    done(std::move(result));
  }

  std::unique_ptr<service::live_follow> follow(std::string const& token,
                                               std::function<void(service::live_message)> on_message) override {
    std::lock_guard lock(mutex_);
    auto id = ++next_follower_;
    followers_[id] = follower{subjects(token).events, std::move(on_message)};
    return std::make_unique<handle>(*this, id);
  }
  bool head_after_follows(std::string const& subject,
                          std::function<void(std::optional<std::uint64_t>)> done) override {
    if (blocking_reads) return false;
    done(last_seq(subject));
    return true;
  }
  bool read_newest(std::string const& subject,
                   std::function<void(std::optional<service::stored_message>)> done) override {
    if (blocking_reads) return false;
    done(short_read_failed() ? std::nullopt : last_message(subject));
    return true;
  }
  bool read_next(std::string const& subject, std::uint64_t from,
                 std::function<void(std::optional<service::stored_message>)> done) override {
    if (blocking_reads) return false;
    std::optional<service::stored_message> out;
    if (!short_read_failed()) {
      std::lock_guard lock(mutex_);
      if (connected) {
        out = service::stored_message{};
        for (auto const& s : log_)
          if (s.subject == subject && s.seq >= from) {
            out = service::stored_message{s.seq, s.payload};
            break;
          }
      }
    }
    done(std::move(out));
    return true;
  }
  bool settle_follows() override { return connected; }

  std::optional<std::uint64_t> last_seq(std::string const& subject) override {
    std::lock_guard lock(mutex_);
    if (!connected) return std::nullopt;
    return last_of_subject_[subject];
  }
  std::optional<std::vector<service::stored_message>> read(std::string const& subject, std::uint64_t from,
                                                           std::uint64_t to) override {
    std::lock_guard lock(mutex_);
    if (!connected) return std::nullopt;
    std::vector<service::stored_message> out;
    for (auto const& s : log_)
      if (s.subject == subject && s.seq >= from && s.seq <= to) out.push_back({s.seq, s.payload});
    return out;
  }
  service::stored_format const& format() const override { return format_; }
  std::optional<service::stored_message> last_message(std::string const& subject) override {
    std::lock_guard lock(mutex_);
    if (!connected) return std::nullopt;
    for (auto it = log_.rbegin(); it != log_.rend(); ++it)
      if (it->subject == subject) return service::stored_message{it->seq, it->payload};
    return service::stored_message{};
  }
  bool put_snapshot(std::string const& subject, std::string const& payload, std::string const& msg_id) override {
    service::append_result ignored;
    append(subject, payload, msg_id, service::append_kind::membership, [&](service::append_result r) { ignored = r; });
    return ignored.ok;
  }

  // Removes a stored event, as the stream's limits would.
  void erase(std::uint64_t seq) {
    std::lock_guard lock(mutex_);
    for (auto it = log_.begin(); it != log_.end(); ++it)
      if (it->seq == seq) {
        log_.erase(it);
        return;
      }
  }

  std::vector<stored> events() const {
    std::lock_guard lock(mutex_);
    return std::vector<stored>(log_.begin(), log_.end());
  }
  std::size_t followers() const {
    std::lock_guard lock(mutex_);
    return followers_.size();
  }
  std::uint64_t appends() const {
    std::lock_guard lock(mutex_);
    return appends_;
  }
  // Short reads (read_newest, read_next) asked so far.
  std::uint64_t short_reads() const {
    std::lock_guard lock(mutex_);
    return short_reads_;
  }

 private:
  struct follower {
    std::string subject;
    std::function<void(service::live_message)> on_message;
  };
  class handle final : public service::live_follow {
   public:
    handle(memory_event_store& store, std::uint64_t id) : store_(store), id_(id) {}
    ~handle() override {
      std::lock_guard lock(store_.mutex_);
      store_.followers_.erase(id_);
    }

   private:
    memory_event_store& store_;
    std::uint64_t id_;
  };

  bool short_read_failed() {
    std::lock_guard lock(mutex_);
    ++short_reads_;
    if (fail_short_reads == 0) return false;
    --fail_short_reads;
    return true;
  }

  void collect_live(std::string const& subject, service::live_message message,
                    std::vector<std::pair<std::function<void(service::live_message)>, service::live_message>>& out) {
    ++stored_count_;
    if (drop_every > 0 && stored_count_ % drop_every == 0) return;
    std::vector<service::live_message> batch;
    if (swap_every > 0 && stored_count_ % swap_every == 0) {
      held_.push_back({subject, std::move(message)});
      return;
    }
    batch.push_back(std::move(message));
    // A held copy goes out right after the next one: the two arrive swapped.
    std::vector<std::pair<std::string, service::live_message>> released;
    released.swap(held_);
    for (auto& m : batch)
      for (auto const& [id, f] : followers_)
        if (f.subject == subject) out.emplace_back(f.on_message, m);
    for (auto& [held_subject, m] : released)
      for (auto const& [id, f] : followers_)
        if (f.subject == held_subject) out.emplace_back(f.on_message, m);
  }

  mutable std::mutex mutex_;
  std::uint64_t head_ = 0;
  std::uint64_t appends_ = 0;
  std::uint64_t short_reads_ = 0;
  std::uint64_t stored_count_ = 0;
  std::deque<stored> log_;
  std::map<std::string, std::uint64_t> last_of_subject_;
  std::map<std::string, std::uint64_t> ids_;
  std::map<std::uint64_t, follower> followers_;
  std::uint64_t next_follower_ = 0;
  std::vector<std::pair<std::string, service::live_message>> held_;
  sig::codec::protobuf_format format_;
};

}  // namespace sig::test
