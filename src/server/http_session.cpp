#include "server/http_session.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include <boost/beast/websocket/rfc6455.hpp>

#include "server/admin_bridge.hpp"
#include "server/socket_errors.hpp"
#include "server/static_files.hpp"
#include "server/tcp_byte_stream.hpp"
#include "server/ws_session.hpp"
#include "protocol/static_path.hpp"
#include "service/history/admin_api.hpp"
#include "service/metrics.hpp"

namespace sig::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

http_session::http_session(tcp::socket&& socket, connection_context& ctx) : stream_(std::move(socket)), ctx_(ctx) {}

void http_session::run() { do_read(); }

void http_session::do_read() {
  parser_.emplace();
  parser_->header_limit(8 * 1024);
  parser_->body_limit(8 * 1024);
  stream_.expires_after(std::chrono::seconds(10));
  http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&http_session::on_read, shared_from_this()));
}

void http_session::on_read(beast::error_code ec, std::size_t) {
  if (ec) {
    if (!expected_disconnect(ec)) ctx_.logger->debug("http request failed: {}", ec.message());
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    return;
  }
  auto request = parser_->release();
  std::string_view target(request.target().data(), request.target().size());
  std::string_view path = target.substr(0, target.find('?'));
  if (beast::websocket::is_upgrade(request)) {
    if (!ctx_.serves_clients())
      return respond(request, http::status::not_found, "text/plain", "not found: this is the admin address\n");
    if (path == "/ws" && ctx_.is_draining())
      return respond(request, http::status::service_unavailable, "text/plain", "draining: connect to another instance\n");
    if (path == "/ws") {
      auto origin = request[http::field::origin];
      if (!origin.empty() && !ctx_.limits.allowed_origins.empty() &&
          std::find(ctx_.limits.allowed_origins.begin(), ctx_.limits.allowed_origins.end(), origin) ==
              ctx_.limits.allowed_origins.end()) {
        ++ctx_.counters.refused_upgrades;
        ctx_.logger->info("websocket refused: origin '{}' is not allowed", std::string(origin.substr(0, 200)));
        return respond(request, http::status::forbidden, "text/plain", "origin not allowed\n");
      }
      if (static_cast<std::size_t>(std::max<std::int64_t>(ctx_.counters.connections.load(), 0)) >=
          ctx_.limits.max_connections) {
        ++ctx_.counters.refused_upgrades;
        ctx_.logger->warn("websocket refused: {} connections, the limit (--max-connections)",
                          ctx_.counters.connections.load());
        return respond(request, http::status::service_unavailable, "text/plain", "too many connections\n");
      }
      std::make_shared<ws_session>(std::make_unique<tcp_byte_stream>(stream_.release_socket()), ctx_)
          ->run(std::move(request));
      return;
    }
    return respond(request, http::status::not_found, "text/plain", "WebSocket endpoint is /ws\n");
  }
  if (request.method() != http::verb::get && request.method() != http::verb::head)
    return respond(request, http::status::method_not_allowed, "text/plain", "method not allowed\n");
  if (path == "/healthz") return respond(request, http::status::ok, "text/plain", "ok\n");
  if (path == "/readyz") {
    if (ctx_.is_draining())
      return respond(request, http::status::service_unavailable, "text/plain", "not ready: draining\n");
    bool ready = ctx_.ready();
    return respond(request, ready ? http::status::ok : http::status::service_unavailable, "text/plain",
                   ready ? "ready\n" : "not ready: the event log is not reachable\n");
  }
  // With a separate admin address, each address answers only its own paths.
  bool for_operators = path == "/metrics" || path == "/admin" || path.starts_with("/admin/");
  if ((for_operators && !ctx_.serves_operators()) || (!for_operators && !ctx_.serves_clients()))
    return respond(request, http::status::not_found, "text/plain", "not found\n");
  if (path == "/metrics")
    return respond(request, http::status::ok, "text/plain; version=0.0.4", ctx_.metrics_text());
  if (ctx_.admin != nullptr && service::admin_api::is_api_path(path)) return serve_admin(std::move(request));
  if (path == "/admin") {  // the page's relative URLs need the slash
    auto res = std::make_shared<http::response<http::string_body>>(http::status::moved_permanently, request.version());
    res->set(http::field::location, "/admin/");
    res->set(http::field::server, "sigstream");
    res->keep_alive(request.keep_alive());
    res->prepare_payload();
    return write(res);
  }
  return serve_static(request, target);
}

// The admin API: cheap refusals here, the rest on an admin worker, which
// answers through admin_bridge. The session reads no further
// request until the answer is written.
void http_session::serve_admin(http::request<http::string_body> request) {
  admin_request_ = std::move(request);
  beast::error_code ec;
  auto remote = stream_.socket().remote_endpoint(ec);
  peer_address_ = ec ? std::string("?") : remote.address().to_string();
  auto answer = ctx_.admin->precheck(admin_view());
  if (answer.status != 0) {
    auto res = json_response(static_cast<http::status>(answer.status), std::move(answer.body));
    if (answer.status == 401) res->set(http::field::www_authenticate, "Bearer realm=\"sigstream admin\"");
    return write(res);
  }
  auto bridge = std::make_shared<admin_bridge>(shared_from_this());
  ctx_.run_admin([bridge] { bridge->run(); });
}

service::admin_request http_session::admin_view() const {
  auto const& r = *admin_request_;
  return service::admin_request{std::string_view(r.method_string().data(), r.method_string().size()),
                                std::string_view(r.target().data(), r.target().size()),
                                std::string_view(r[http::field::authorization].data(), r[http::field::authorization].size()),
                                peer_address_};
}

std::shared_ptr<http::response<http::string_body>> http_session::json_response(http::status status, std::string body) {
  auto res = std::make_shared<http::response<http::string_body>>(status, admin_request_->version());
  res->set(http::field::server, "sigstream");
  res->set(http::field::content_type, "application/json");
  res->set(http::field::cache_control, "no-store");
  res->set("X-Sigstream-Instance", ctx_.instance_id);
  res->keep_alive(admin_request_->keep_alive());
  if (admin_request_->method() != http::verb::head) res->body() = std::move(body);
  res->prepare_payload();
  return res;
}

// From memory, so no file is read here. Clients revalidate every time
// (no-cache) and get a 304 when their copy is current.
void http_session::serve_static(http::request<http::string_body> const& request, std::string_view target) {
  auto name = protocol::static_file_for(target);
  auto const* file = (ctx_.web && name) ? ctx_.web->find(*name) : nullptr;
  if (file == nullptr) return respond(request, http::status::not_found, "text/plain", "not found\n");
  auto const& if_none_match = request[http::field::if_none_match];
  bool current = !if_none_match.empty() && if_none_match == file->etag;
  auto res = std::make_shared<http::response<http::string_body>>(
      current ? http::status::not_modified : http::status::ok, request.version());
  res->set(http::field::server, "sigstream");
  res->set(http::field::content_type, file->media_type);
  res->set(http::field::cache_control, "no-cache");
  res->set(http::field::etag, file->etag);
  res->set("X-Content-Type-Options", "nosniff");
  res->set("X-Sigstream-Instance", ctx_.instance_id);
  res->keep_alive(request.keep_alive());
  if (!current && request.method() != http::verb::head) res->body() = file->body;
  res->prepare_payload();
  if (!current && request.method() == http::verb::head) res->content_length(file->body.size());
  write(res);
}

void http_session::respond(http::request<http::string_body> const& request, http::status status, std::string_view type,
             std::string body) {
  auto res = std::make_shared<http::response<http::string_body>>(status, request.version());
  res->set(http::field::server, "sigstream");
  res->set(http::field::content_type, type);
  res->set(http::field::cache_control, "no-store");
  res->set("X-Sigstream-Instance", ctx_.instance_id);
  res->keep_alive(request.keep_alive());
  if (request.method() != http::verb::head) res->body() = std::move(body);
  res->prepare_payload();
  write(res);
}

void http_session::write(std::shared_ptr<http::response<http::string_body>> res) {
  http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
    if (ec) return;
    if (!res->keep_alive()) {
      beast::error_code ignored;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      return;
    }
    self->do_read();
  });
}

}  // namespace sig::server
