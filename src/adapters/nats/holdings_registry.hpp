#pragma once
// service::room_holdings in a JetStream key-value bucket (<stream>_HOLDINGS):
// one key per instance and room, "<base64url instance id>.<room token>",
// whose value is the room's name. Written through the data connection's
// appender, so a record costs one pipelined publish, not a round trip on
// a worker thread. Keys expire a day after their last write (so that keys of
// ids never seen again do not pile up); those still held are rewritten
// every `refresh` meanwhile.
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <chrono>
#include <map>
#include <mutex>
#include <string>

#include "service/room_holdings.hpp"

namespace sig::nats {

class appender;

class holdings_registry final : public service::room_holdings {
 public:
  holdings_registry(boost::asio::io_context& io, appender& appends, std::string bucket, std::string instance_id,
                    std::chrono::milliseconds refresh);
  ~holdings_registry() override;

  void hold(std::string const& room_token, std::string const& room_name, std::function<void(bool)> done) override;
  void release(std::string const& room_token) override;
  void start();
  // A clean stop: deletes every record of this instance, waiting at most
  // `wait` for them to be stored.
  void release_all(std::chrono::milliseconds wait);

  // "<base64url instance id>." : the keys of one instance start with it.
  static std::string key_prefix(std::string const& instance_id);

 private:
  void put(std::string const& token, std::string const& name, std::function<void(bool)> done);
  void schedule_refresh();

  appender& appends_;
  std::string subject_prefix_;  // "$KV.<bucket>.<instance key>."
  boost::asio::steady_timer refresh_timer_;
  std::chrono::milliseconds refresh_;
  std::mutex mutex_;
  struct held_room {
    std::string name;
    int count = 0;  // room objects of this token following it (two, briefly, when one replaces another)
  };
  std::map<std::string, held_room> held_;
};

}  // namespace sig::nats
