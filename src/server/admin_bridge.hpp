#pragma once
// Bridges the blocking admin API, which runs on an admin worker, to the
// HTTP session's strand: an answer is posted to the strand and written
// there; a stream's chunks block the worker until written, or until the
// client is gone or the instance stops (woken at once, never polled).
#include <boost/beast/http.hpp>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "service/history/admin_api.hpp"

namespace sig::server {

class http_session;

class admin_bridge final : public service::admin_reply, public std::enable_shared_from_this<admin_bridge> {
 public:
  explicit admin_bridge(std::shared_ptr<http_session> session);

  // On an admin worker: the whole request.
  void run();

  void whole(int status, std::string content_type, std::string body,
             std::vector<std::pair<std::string, std::string>> headers) override;
  bool begin_stream(std::string content_type) override;
  bool chunk(std::string data) override;
  void end_stream() override;
  std::atomic<bool> const& client_gone() const override { return gone_; }
  void cancel() override { mark_gone(); }

 private:
  // Runs `start` on the session's strand, which calls `written(ok)` when
  // its write is done, and blocks the worker until then or until the
  // client is gone.
  template <typename Start>
  bool wait(Start start);
  void written(bool ok);
  void mark_gone();
  // A client that goes away while nothing is being written (a followed
  // room gone quiet) shows up as the end of its side of the connection.
  void watch_for_close();

  std::shared_ptr<http_session> session_;
  std::atomic<bool> gone_{false};
  bool answered_ = false;
  // The write the worker waits for.
  std::mutex mutex_;
  std::condition_variable changed_;
  bool done_ = false;
  bool ok_ = false;
  boost::beast::http::response<boost::beast::http::empty_body> header_;
  std::optional<boost::beast::http::response_serializer<boost::beast::http::empty_body>> serializer_;
  char probe_[1];
};

}  // namespace sig::server
