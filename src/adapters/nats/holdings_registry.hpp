#pragma once
// service::room_holdings in a JetStream key-value bucket (<stream>_HOLDINGS):
// one key per instance and room, "<base64url instance id>.<room token>",
// whose value is the room's name. Written through the data connection's
// appender, so a record costs one pipelined publish, not a round trip on
// a worker thread.
//
// A record outlives the room's last follower here by `keep` (a room that
// comes back at once costs nothing; a record of a room no longer followed
// only sends the survivors to look at a room where this instance has no
// member). Keys expire a day after their last write, so that keys of ids
// never seen again do not pile up; those still held are rewritten every
// `refresh` meanwhile.
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "ports/room_holdings.hpp"

namespace sig::nats {

class appender;

class holdings_registry final : public service::room_holdings {
 public:
  holdings_registry(boost::asio::io_context& io, appender& appends, std::string bucket, std::string instance_id,
                    std::chrono::milliseconds keep, std::chrono::milliseconds refresh);
  ~holdings_registry() override;

  void hold(std::string const& room_token, std::string const& room_name, std::function<void(bool)> done) override;
  void release(std::string const& room_token) override;
  void start();

 private:
  using clock = std::chrono::steady_clock;
  struct record {
    std::string name;
    int followers = 0;    // room objects following it here (two, briefly, when one replaces another)
    bool stored = false;  // the key is in the bucket
    std::vector<std::function<void(bool)>> waiting;  // holds waiting for the write in flight
    clock::time_point released;  // when followers fell to 0
  };
  void write(std::string const& token);  // under mutex_
  void on_written(std::string const& token, bool ok);
  void tick();

  appender& appends_;
  std::string subject_prefix_;  // "$KV.<bucket>.<instance key>."
  boost::asio::steady_timer timer_;
  std::chrono::milliseconds keep_;
  std::chrono::milliseconds refresh_;
  clock::time_point last_refresh_ = clock::now();
  std::mutex mutex_;
  std::map<std::string, record> records_;
};

}  // namespace sig::nats
