#include "adapters/ws/listener.hpp"

#include <algorithm>

#include <spdlog/spdlog.h>

#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include <future>

#include "adapters/ws/static_files.hpp"
#include "adapters/ws/ws_session.hpp"
#include "service/metrics.hpp"
#include "protocol/static_path.hpp"
#include "service/admin_api.hpp"

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
        std::make_shared<ws_session>(stream_.release_socket(), ctx_)->run(std::move(request));
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
  // answers through admin_exchange (below). The session reads no further
  // request until the answer is written.
  void serve_admin(http::request<http::string_body> request) {
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
    auto exchange = std::make_shared<admin_exchange>(shared_from_this());
    ctx_.run_admin([exchange] { exchange->run(); });
  }

  service::admin_request admin_view() const {
    auto const& r = *admin_request_;
    return service::admin_request{std::string_view(r.method_string().data(), r.method_string().size()),
                                  std::string_view(r.target().data(), r.target().size()),
                                  std::string_view(r[http::field::authorization].data(), r[http::field::authorization].size()),
                                  peer_address_};
  }

  std::shared_ptr<http::response<http::string_body>> json_response(http::status status, std::string body) {
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

  // Bridges the blocking admin API (on an admin worker) to this session's
  // strand: each call posts the write there and waits for it.
  class admin_exchange final : public service::admin_reply, public std::enable_shared_from_this<admin_exchange> {
   public:
    explicit admin_exchange(std::shared_ptr<http_session> session) : session_(std::move(session)) {}

    void run() {
      session_->ctx_.admin->handle(session_->admin_view(), *this);
      if (!answered_) whole(500, "application/json", "{\"error\":\"internal\"}\n", {});
    }

    void whole(int status, std::string content_type, std::string body,
               std::vector<std::pair<std::string, std::string>> headers) override {
      answered_ = true;
      asio::post(session_->stream_.get_executor(), [s = session_, status, content_type = std::move(content_type),
                                                    body = std::move(body), headers = std::move(headers)]() mutable {
        auto res = s->json_response(static_cast<http::status>(status), std::move(body));
        res->set(http::field::content_type, content_type);
        for (auto const& [k, v] : headers) res->set(k, v);
        s->write(res);
      });
    }

    bool begin_stream(std::string content_type) override {
      answered_ = true;
      return wait([self = shared_from_this(), content_type = std::move(content_type)](std::shared_ptr<std::promise<bool>> done) {
        auto& s = *self->session_;
        s.stream_.expires_never();  // a followed history stays open as long as the client wants
        self->header_.result(http::status::ok);
        self->header_.version(s.admin_request_->version());
        self->header_.set(http::field::server, "sigstream");
        self->header_.set(http::field::content_type, content_type);
        self->header_.set(http::field::cache_control, "no-store");
        self->header_.set("X-Content-Type-Options", "nosniff");
        self->header_.set("X-Sigstream-Instance", s.ctx_.instance_id);
        self->header_.keep_alive(false);  // the stream ends with the connection
        self->header_.chunked(true);
        self->serializer_.emplace(self->header_);
        http::async_write_header(s.stream_, *self->serializer_, [self, done](beast::error_code ec, std::size_t) {
          if (!ec) self->watch_for_close();
          done->set_value(!ec);
        });
      });
    }

    bool chunk(std::string data) override {
      if (data.empty()) return !gone_;
      return wait([self = shared_from_this(), data = std::move(data)](std::shared_ptr<std::promise<bool>> done) mutable {
        auto owned = std::make_shared<std::string>(std::move(data));
        asio::async_write(self->session_->stream_, http::make_chunk(asio::buffer(*owned)),
                          [self, owned, done](beast::error_code ec, std::size_t) { done->set_value(!ec); });
      });
    }

    void end_stream() override {
      wait([self = shared_from_this()](std::shared_ptr<std::promise<bool>> done) {
        asio::async_write(self->session_->stream_, http::make_chunk_last(), [self, done](beast::error_code ec, std::size_t) {
          beast::error_code ignored;
          self->session_->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
          done->set_value(!ec);
        });
      });
    }

    std::atomic<bool> const& client_gone() const override { return gone_; }
    void cancel() override { gone_ = true; }

   private:
    // Runs `start(promise)` on the session's strand and waits for the
    // promise, giving up when the client is gone or the instance stops (the
    // write's handler, if it ever runs, still owns the promise).
    template <typename Start>
    bool wait(Start start) {
      if (gone_) return false;
      auto done = std::make_shared<std::promise<bool>>();
      auto result = done->get_future();
      asio::post(session_->stream_.get_executor(), [start = std::move(start), done]() mutable { start(done); });
      while (result.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
        if (gone_) {
          asio::post(session_->stream_.get_executor(), [s = session_] {
            beast::error_code ec;
            s->stream_.socket().close(ec);
          });
          return false;
        }
      }
      bool ok = result.get();
      if (!ok) gone_ = true;
      return ok;
    }

    // A client that goes away while nothing is being written (a followed
    // room gone quiet) shows up as the end of its side of the connection.
    void watch_for_close() {
      session_->stream_.socket().async_read_some(asio::buffer(probe_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
        if (ec) self->gone_ = true;
      });
    }

    std::shared_ptr<http_session> session_;
    std::atomic<bool> gone_{false};
    bool answered_ = false;
    http::response<http::empty_body> header_;
    std::optional<http::response_serializer<http::empty_body>> serializer_;
    char probe_[1];
  };

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
  std::optional<http::request<http::string_body>> admin_request_;
  std::string peer_address_;
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
