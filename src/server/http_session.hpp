#pragma once
// Plain HTTP on the WebSocket port: health, readiness, metrics, static
// files, the admin API, and the upgrade to /ws, which hands the socket to a
// ws_session. One request at a time, on the connection's strand.
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "server/connection_context.hpp"
#include "service/history/admin_api.hpp"

namespace sig::server {

class http_session : public std::enable_shared_from_this<http_session> {
 public:
  http_session(boost::asio::ip::tcp::socket&& socket, connection_context& ctx);
  void run();

 private:
  // The admin API's answers are written on this session's stream.
  friend class admin_bridge;
  using request_type = boost::beast::http::request<boost::beast::http::string_body>;
  using response_ptr = std::shared_ptr<boost::beast::http::response<boost::beast::http::string_body>>;

  void do_read();
  void on_read(boost::beast::error_code ec, std::size_t bytes);
  // The admin API: cheap refusals here, the rest on an admin worker.
  void serve_admin(request_type request);
  service::admin_request admin_view() const;
  response_ptr json_response(boost::beast::http::status status, std::string body);
  void serve_static(request_type const& request, std::string_view target);
  void respond(request_type const& request, boost::beast::http::status status, std::string_view type, std::string body);
  void write(response_ptr res);

  boost::beast::tcp_stream stream_;
  connection_context& ctx_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
  std::optional<boost::beast::http::request<boost::beast::http::string_body>> admin_request_;
  std::string peer_address_;
};

}  // namespace sig::server
