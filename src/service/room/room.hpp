#pragma once
// One room as this instance sees it: membership folded from the stream, the
// room's live feed, and the local peers it delivers to. All state is touched
// only on the room's strand; the public calls post to it.
//
// The room is consistent by construction: nothing changes state but an event
// coming back from the stream, in stream order, through domain::evolve. A
// join is appended and answered only when its own event comes back, so the
// `joined` reply's peers are exactly the members folded before it.
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>

#include <algorithm>
#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ports/event_store.hpp"
#include "service/room/ordered_feed.hpp"
#include "domain/room_state.hpp"
#include "protocol/messages.hpp"
#include "ports/peer_endpoint.hpp"
#include "service/room/room_context.hpp"

namespace sig::service {

// Frames are serialized once and shared by every local peer they go to.
inline frame_ptr make_frame(std::string text) { return std::make_shared<std::string const>(std::move(text)); }
// Wall clock, Unix ms: the time an event carries.
inline std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The room's code is split by concern: room.cpp (the commands and the local
// peers), room_following.cpp (rebuild, live feed, catch-up, folding), and
// room_resume.cpp (resume).
class room : public std::enable_shared_from_this<room> {
 public:
  room(room_context& ctx, std::string name);
  ~room();

  std::string const& name() const { return name_; }

  void join(std::shared_ptr<peer_endpoint> endpoint, std::string peer, std::string meta_json,
            protocol::request_id id);
  void signal(std::shared_ptr<peer_endpoint> endpoint, std::string peer, std::optional<std::string> to,
              std::string data_json, protocol::request_id id);
  // A resume (docs/protocol.md `resume`): the member `peer` (whose join was
  // `join_seq`, as its verified token says) continues on this connection;
  // it is sent what came after `last_seq`.
  void resume(std::shared_ptr<peer_endpoint> endpoint, std::string peer, std::uint64_t join_seq,
              std::uint64_t last_seq, protocol::request_id id);
  // The connection of a joined peer dropped without a leave: the peer
  // stays in the room for the grace period, so that it can resume.
  void detach(std::string peer);
  // `endpoint` may be null (the connection is gone).
  void leave(std::shared_ptr<peer_endpoint> endpoint, std::string peer, domain::leave_reason reason,
             protocol::request_id id);
  // The instance is stopping: record every local peer's leave (disconnect),
  // and the expiry of every detached peer that did not resume elsewhere.
  void disconnect_all();

 private:
  enum class phase { idle, syncing, live, catching_up, closed };
  // What a join or resume hears when the room cannot follow the stream.
  static constexpr std::string_view log_unreachable = "the event log is not reachable; try again";

  struct join_request {
    std::weak_ptr<peer_endpoint> endpoint;
    std::string peer;
    std::string meta_json;
    protocol::request_id id;
    bool abandoned = false;  // the connection went away before the join came back
    // Appended before the room's rebuild (its first join here): decided on
    // no state, and no base of the rebuild may already hold it.
    bool early = false;
    // The rebuild failed after it was appended: the client was told, and
    // the append's outcome decides whether its leave must be recorded.
    bool orphaned = false;
    std::uint64_t seq = 0;  // once acknowledged
  };
  struct resume_request {
    std::weak_ptr<peer_endpoint> endpoint;
    std::string peer;
    std::uint64_t join_seq = 0;
    std::uint64_t last_seq = 0;
    protocol::request_id id;
    bool abandoned = false;
  };
  struct local_member {
    std::string peer;
    std::uint64_t join_seq = 0;
    std::weak_ptr<peer_endpoint> endpoint;
    // A resumed peer is first sent what it missed (read from the stream);
    // live events wait here meanwhile, so that it gets everything in order.
    bool replaying = false;
    std::vector<frame_ptr> held_back;
  };
  struct detached_member {
    std::uint64_t join_seq = 0;
    std::shared_ptr<boost::asio::steady_timer> grace;
  };
  struct sync_result;

  void do_join(join_request request);
  void do_signal(std::shared_ptr<peer_endpoint> endpoint, std::string peer, std::optional<std::string> to,
                 std::string data_json, protocol::request_id id);
  void do_leave(std::shared_ptr<peer_endpoint> endpoint, std::string peer, domain::leave_reason reason,
                protocol::request_id id);
  void do_resume(resume_request request);
  void do_detach(std::string const& peer);
  void admit_resumes();
  void keep_detached(std::string const& peer, std::uint64_t join_seq);
  void drop_detached(std::string const& peer);
  void on_resumed(domain::event const& e, std::vector<domain::member> members_before_event);
  void replay_to(std::string peer, std::uint64_t last_seq, std::uint64_t resume_seq,
                 std::vector<domain::member> members_at_resume, protocol::request_id id);
  void finish_replay(std::string const& peer, std::uint64_t last_seq, std::vector<domain::member> members_at_resume,
                     std::optional<std::vector<stored_message>> missed, protocol::request_id id);
  std::string resume_token_for(std::string const& peer, std::uint64_t join_seq) const;
  void send_to(local_member& local, frame_ptr const& frame);

  void start_sync();
  void on_parts_read(std::shared_ptr<sync_result> sync);
  void on_synced(std::shared_ptr<sync_result> result);
  void start_catch_up();
  void read_missing(std::uint64_t from, std::uint64_t to);
  void catch_up_on_worker(std::uint64_t from);
  // Runs a continuation on the room's strand (for the short reads).
  std::function<void(std::function<void()>)> hop();
  // `read_to`: the read covered the room up to there (0: up to its last message).
  void on_caught_up(std::optional<std::vector<stored_message>> messages, std::uint64_t read_to = 0);
  void on_live(live_message message);
  void take_arrival(live_message message);
  void take_continuing(std::vector<live_message> ready);
  void await_missing();
  void apply(std::uint64_t seq, std::string const& payload);
  bool pass_over(std::uint64_t seq, std::string const& payload);
  void fold_one(std::uint64_t seq, std::string const& payload);

  void append(domain::event_body body, append_kind kind, std::function<void(append_result)> done,
              std::string msg_id = {});
  void append_attempt(domain::event e, append_kind kind, std::function<void(append_result)> done, int attempt,
                      std::string msg_id);
  void on_appended(domain::event e, append_kind kind, std::function<void(append_result)> done, int attempt,
                   std::string msg_id, append_result result);
  void on_stored(std::function<void(append_result)> done, append_result result);
  void confirm_duplicate(domain::event e, append_kind kind, std::function<void(append_result)> done, int attempt,
                         std::string msg_id, std::uint64_t claimed);
  void append_leave(std::string peer, domain::leave_reason reason, std::shared_ptr<peer_endpoint> endpoint,
                    protocol::request_id id, std::string msg_id = {});
  void admit_waiting();
  void admit_early(join_request request);
  bool append_join(join_request request, domain::room_state const& state, std::size_t in_flight);
  void on_join_appended(std::string const& peer, append_result const& result);
  std::vector<std::string> early_joiners() const;
  void orphan_early_joins();
  void record_orphan_leave(join_request const& request, std::uint64_t join_seq);
  void expect_echo(std::uint64_t seq);
  void store_snapshot();
  void write_stream_snapshot();
  void fail_joins(std::vector<join_request>& joins, protocol::error_code code, std::string_view message);
  void fail_waiting(protocol::error_code code, std::string_view message);
  void reply_join_error(std::shared_ptr<peer_endpoint> const& endpoint, protocol::request_id const& id,
                        protocol::error_code code, std::string_view message);
  bool unused() const;  // nothing local: no peer, no request, nobody detached
  // A request of `peer` still waiting for the room to go live was never
  // appended: dropping it undoes everything. False if there is none.
  template <typename Request>
  bool drop_unappended(std::vector<Request>& waiting, std::string const& peer) {
    auto it = std::find_if(waiting.begin(), waiting.end(), [&](Request const& r) { return r.peer == peer; });
    if (it == waiting.end()) return false;
    waiting.erase(it);
    maybe_linger();
    return true;
  }
  void reply_error(std::shared_ptr<peer_endpoint> const& endpoint, protocol::request_id const& id,
                   protocol::error_code code, std::string_view message);
  void maybe_linger();
  local_member* find_local(std::string_view peer);

  room_context& ctx_;
  std::string name_;
  std::string token_;
  std::string subject_;  // every event of the room
  std::string snapshot_subject_;  // the room's newest snapshot (a rollup)
  // Events of the room folded since its beginning (as far as the stream or
  // the snapshot the room started from knows): where snapshots are due.
  std::uint64_t room_events_ = 0;
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::steady_timer echo_timer_;
  boost::asio::steady_timer linger_timer_;
  // Waits for a missing live message (reordered, or lost), then retries a
  // failed catch-up. Never shared with the echo watchdog, which re-arms often.
  boost::asio::steady_timer recovery_timer_;
  bool awaiting_missing_ = false;
  // Records of membership (leaves, resumes) that failed and are being
  // retried in the background: the room stays until they are stored.
  int unrecorded_ = 0;
  std::minstd_rand rng_;  // retry jitter, seeded per room in the constructor

  phase phase_ = phase::idle;
  domain::room_state state_;
  // The live feed put in stream order; its mark is the last sequence taken
  // from the room's subject.
  ordered_feed feed_;
  // The event being applied, or the last one: the position snapshots and
  // acknowledgements speak of.
  std::uint64_t applied_seq_ = 0;
  // Newest sequence this room appended and still expects on the live feed.
  std::uint64_t awaited_ = 0;
  std::unique_ptr<live_follow> live_;

  std::vector<join_request> waiting_;                          // not yet appended (room not live)
  std::unordered_map<std::string, join_request> pending_;      // appended, waiting for the echo
  std::vector<local_member> locals_;                           // joined through this instance
  std::vector<resume_request> waiting_resumes_;                // not yet appended (room not live)
  std::unordered_map<std::string, resume_request> pending_resumes_;  // appended, waiting for the echo
  std::unordered_map<std::string, detached_member> detached_;  // connection dropped, within the grace period
};

}  // namespace sig::service
