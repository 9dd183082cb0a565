#include "server/listener.hpp"

#include <spdlog/spdlog.h>

#include <boost/asio/strand.hpp>

#include "server/http_session.hpp"

namespace sig::server {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

struct listener::impl : std::enable_shared_from_this<listener::impl> {
  impl(asio::io_context& io, tcp::endpoint where, connection_context& ctx)
      : io(io), acceptor(io), ctx(ctx) {
    acceptor.open(where.protocol());
    acceptor.set_option(asio::socket_base::reuse_address(true));
    acceptor.bind(where);
    acceptor.listen(asio::socket_base::max_listen_connections);
  }

  void do_accept() {
    acceptor.async_accept(asio::make_strand(io), [self = shared_from_this()](boost::system::error_code ec, tcp::socket socket) {
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
    boost::system::error_code ignored;
    d->acceptor.close(ignored);
  });
}

tcp::endpoint listener::local_endpoint() const { return impl_->acceptor.local_endpoint(); }

}  // namespace sig::server
