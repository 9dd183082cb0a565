#include "server/admin_bridge.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "server/http_session.hpp"

namespace sig::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

admin_bridge::admin_bridge(std::shared_ptr<http_session> session) : session_(std::move(session)) {}

void admin_bridge::run() {
  session_->ctx_.admin->handle(session_->admin_view(), *this);
  if (!answered_) whole(500, "application/json", "{\"error\":\"internal\"}\n", {});
}

void admin_bridge::whole(int status, std::string content_type, std::string body,
                         std::vector<std::pair<std::string, std::string>> headers) {
  answered_ = true;
  asio::post(session_->stream_.get_executor(), [s = session_, status, content_type = std::move(content_type),
                                                body = std::move(body), headers = std::move(headers)]() mutable {
    auto res = s->json_response(static_cast<http::status>(status), std::move(body));
    res->set(http::field::content_type, content_type);
    for (auto const& [k, v] : headers) res->set(k, v);
    s->write(res);
  });
}

bool admin_bridge::begin_stream(std::string content_type) {
  answered_ = true;
  return wait([self = shared_from_this(), content_type = std::move(content_type)] {
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
    http::async_write_header(s.stream_, *self->serializer_, [self](beast::error_code ec, std::size_t) {
      if (!ec) self->watch_for_close();
      self->written(!ec);
    });
  });
}

bool admin_bridge::chunk(std::string data) {
  if (data.empty()) return !gone_;
  return wait([self = shared_from_this(), data = std::move(data)]() mutable {
    auto owned = std::make_shared<std::string>(std::move(data));
    asio::async_write(self->session_->stream_, http::make_chunk(asio::buffer(*owned)),
                      [self, owned](beast::error_code ec, std::size_t) { self->written(!ec); });
  });
}

void admin_bridge::end_stream() {
  wait([self = shared_from_this()] {
    asio::async_write(self->session_->stream_, http::make_chunk_last(), [self](beast::error_code ec, std::size_t) {
      beast::error_code ignored;
      self->session_->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      self->written(!ec);
    });
  });
}

template <typename Start>
bool admin_bridge::wait(Start start) {
  if (gone_) return false;
  {
    std::lock_guard lock(mutex_);
    done_ = false;
  }
  asio::post(session_->stream_.get_executor(), std::move(start));
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [this] { return done_ || gone_; });
  if (done_) {
    if (!ok_) gone_ = true;
    return ok_;
  }
  // Gone while the write is pending (a client that stopped reading): the
  // socket is closed so that the write ends; its handler still holds this.
  asio::post(session_->stream_.get_executor(), [s = session_] {
    beast::error_code ignored;
    s->stream_.socket().close(ignored);
  });
  return false;
}

void admin_bridge::written(bool ok) {
  {
    std::lock_guard lock(mutex_);
    done_ = true;
    ok_ = ok;
  }
  changed_.notify_all();
}

void admin_bridge::mark_gone() {
  {
    std::lock_guard lock(mutex_);
    gone_ = true;
  }
  changed_.notify_all();
}

void admin_bridge::watch_for_close() {
  session_->stream_.socket().async_read_some(asio::buffer(probe_), [self = shared_from_this()](beast::error_code ec, std::size_t) {
    if (ec) self->mark_gone();
  });
}

}  // namespace sig::server
