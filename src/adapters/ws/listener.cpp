#include "adapters/ws/listener.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include "adapters/ws/static_files.hpp"
#include "adapters/ws/ws_session.hpp"
#include "protocol/static_path.hpp"

namespace sig::ws {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

// Plain HTTP on the WebSocket port: health, readiness, metrics, and the
// upgrade to /ws. One request at a time, on the connection's strand.
class http_session : public std::enable_shared_from_this<http_session> {
 public:
  http_session(tcp::socket&& socket, connection_context& ctx) : stream_(std::move(socket)), ctx_(ctx) {}

  void run() { do_read(); }

 private:
  void do_read() {
    parser_.emplace();
    parser_->header_limit(8 * 1024);
    parser_->body_limit(8 * 1024);
    stream_.expires_after(std::chrono::seconds(10));
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&http_session::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, std::size_t) {
    if (ec) {
      if (ec != http::error::end_of_stream && ec != beast::error::timeout && ec != asio::error::operation_aborted &&
          ec != asio::error::connection_reset)
        ctx_.logger->debug("http request failed: {}", ec.message());
      beast::error_code ignored;
      stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      return;
    }
    auto request = parser_->release();
    std::string_view target(request.target().data(), request.target().size());
    std::string_view path = target.substr(0, target.find('?'));
    if (beast::websocket::is_upgrade(request)) {
      if (path == "/ws") {
        std::make_shared<ws_session>(std::move(stream_), ctx_)->run(std::move(request));
        return;
      }
      return respond(request, http::status::not_found, "text/plain", "WebSocket endpoint is /ws\n");
    }
    if (request.method() != http::verb::get && request.method() != http::verb::head)
      return respond(request, http::status::method_not_allowed, "text/plain", "method not allowed\n");
    if (path == "/healthz") return respond(request, http::status::ok, "text/plain", "ok\n");
    if (path == "/readyz") {
      bool ready = ctx_.ready();
      return respond(request, ready ? http::status::ok : http::status::service_unavailable, "text/plain",
                     ready ? "ready\n" : "not ready: the event log is not reachable\n");
    }
    if (path == "/metrics")
      return respond(request, http::status::ok, "text/plain; version=0.0.4", ctx_.metrics_text());
    return serve_static(request, target);
  }

  // From memory, so no file is read here. Clients revalidate every time
  // (no-cache) and get a 304 when their copy is current.
  void serve_static(http::request<http::string_body> const& request, std::string_view target) {
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

  void respond(http::request<http::string_body> const& request, http::status status, std::string_view type,
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

  void write(std::shared_ptr<http::response<http::string_body>> res) {
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

  beast::tcp_stream stream_;
  connection_context& ctx_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
};

}  // namespace

struct listener::impl : std::enable_shared_from_this<listener::impl> {
  impl(asio::io_context& io, tcp::endpoint where, connection_context& ctx)
      : io(io), acceptor(io), ctx(ctx) {
    acceptor.open(where.protocol());
    acceptor.set_option(asio::socket_base::reuse_address(true));
    acceptor.bind(where);
    acceptor.listen(asio::socket_base::max_listen_connections);
  }

  void do_accept() {
    acceptor.async_accept(asio::make_strand(io), [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted || !self->acceptor.is_open()) return;
      if (ec) {
        // Out of file descriptors, typically: say so, and keep accepting.
        self->ctx.logger->warn("accept failed: {}", ec.message());
      } else {
        socket.set_option(tcp::no_delay(true), ec);
        std::make_shared<http_session>(std::move(socket), self->ctx)->run();
      }
      self->do_accept();
    });
  }

  asio::io_context& io;
  tcp::acceptor acceptor;
  connection_context& ctx;
};

listener::listener(asio::io_context& io, tcp::endpoint where, connection_context& ctx)
    : impl_(std::make_shared<impl>(io, where, ctx)) {}

listener::~listener() = default;

void listener::start() { impl_->do_accept(); }

void listener::stop() {
  asio::post(impl_->acceptor.get_executor(), [d = impl_] {
    beast::error_code ignored;
    d->acceptor.close(ignored);
  });
}

tcp::endpoint listener::local_endpoint() const { return impl_->acceptor.local_endpoint(); }

}  // namespace sig::ws
