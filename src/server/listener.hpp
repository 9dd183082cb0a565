#pragma once
// Accepts TCP connections and hands each to an HTTP session on its own
// strand. Beast stays out of this header.
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <memory>

#include "server/connection_context.hpp"

namespace sig::server {

class listener {
 public:
  // Throws (at start-up) if the address cannot be bound.
  listener(boost::asio::io_context& io, boost::asio::ip::tcp::endpoint where, connection_context& ctx);
  ~listener();
  void start();
  void stop();
  boost::asio::ip::tcp::endpoint local_endpoint() const;

 private:
  struct impl;
  std::shared_ptr<impl> impl_;
};

}  // namespace sig::server
