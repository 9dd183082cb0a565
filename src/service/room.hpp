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

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "adapters/nats/event_log.hpp"
#include "domain/room_state.hpp"
#include "protocol/messages.hpp"
#include "service/peer_endpoint.hpp"
#include "service/room_context.hpp"

namespace sig::service {

class room : public std::enable_shared_from_this<room> {
 public:
  room(room_context& ctx, std::string name);
  ~room();

  std::string const& name() const { return name_; }

  void join(std::shared_ptr<peer_endpoint> endpoint, std::string peer, std::string meta_json,
            protocol::request_id id);
  void signal(std::shared_ptr<peer_endpoint> endpoint, std::string peer, std::optional<std::string> to,
              std::string data_json, protocol::request_id id);
  // `endpoint` may be null (the connection is gone).
  void leave(std::shared_ptr<peer_endpoint> endpoint, std::string peer, domain::leave_reason reason,
             protocol::request_id id);
  // The instance is stopping: record every local peer's leave (disconnect).
  void disconnect_all();

 private:
  enum class phase { idle, syncing, live, catching_up, closed };

  struct join_request {
    std::weak_ptr<peer_endpoint> endpoint;
    std::string peer;
    std::string meta_json;
    protocol::request_id id;
    bool abandoned = false;  // the connection went away before the join came back
  };
  struct local_member {
    std::string peer;
    std::uint64_t join_seq = 0;
    std::weak_ptr<peer_endpoint> endpoint;
  };
  struct sync_result;

  void do_join(join_request request);
  void do_signal(std::shared_ptr<peer_endpoint> endpoint, std::string peer, std::optional<std::string> to,
                 std::string data_json, protocol::request_id id);
  void do_leave(std::shared_ptr<peer_endpoint> endpoint, std::string peer, domain::leave_reason reason,
                protocol::request_id id);

  void start_sync();
  void on_synced(std::shared_ptr<sync_result> result);
  void start_catch_up();
  void on_caught_up(std::optional<std::vector<nats::stored_message>> messages);
  void on_live(nats::live_message message);
  void take_arrival(nats::live_message message);
  void drain_buffer();
  void await_missing();
  bool take_live(nats::live_message const& message);  // false: a gap
  void apply(std::uint64_t seq, std::string const& payload);

  void append(domain::event_body body, std::function<void(nats::append_result)> done, int attempts_left = 3,
              std::string msg_id = {});
  void append_leave(std::string peer, domain::leave_reason reason, std::shared_ptr<peer_endpoint> endpoint,
                    protocol::request_id id, std::string msg_id = {});
  void admit_waiting();
  void expect_echo(std::uint64_t seq);
  void store_snapshot();
  void fail_joins(std::vector<join_request>& joins, protocol::error_code code, std::string_view message);
  void reply_error(std::shared_ptr<peer_endpoint> const& endpoint, protocol::request_id const& id,
                   protocol::error_code code, std::string_view message);
  void maybe_linger();
  local_member* find_local(std::string_view peer);

  room_context& ctx_;
  std::string name_;
  std::string token_;
  std::string subject_;  // every event of the room
  boost::asio::strand<boost::asio::io_context::executor_type> strand_;
  boost::asio::steady_timer echo_timer_;
  boost::asio::steady_timer linger_timer_;
  // Waits for a missing live message (reordered, or lost), then retries a
  // failed catch-up. Never shared with the echo watchdog, which re-arms often.
  boost::asio::steady_timer recovery_timer_;
  bool awaiting_missing_ = false;

  phase phase_ = phase::idle;
  domain::room_state state_;
  // Last sequence taken from the room's subject: every event up to it has
  // been folded (or skipped as unreadable). The live feed's "previous
  // sequence on this subject" header must equal it, or a gap is found.
  std::uint64_t mark_ = 0;
  // Newest sequence this room appended and still expects on the live feed.
  std::uint64_t awaited_ = 0;
  std::unique_ptr<nats::live_subscription> live_;
  std::deque<nats::live_message> buffer_;  // live feed held while syncing or catching up

  std::vector<join_request> waiting_;                          // not yet appended (room not live)
  std::unordered_map<std::string, join_request> pending_;      // appended, waiting for the echo
  std::vector<local_member> locals_;                           // joined through this instance
};

}  // namespace sig::service
