#pragma once
// The ends of a client connection that are its normal life, not a fault:
// the client went away (EOF, reset, a broken pipe), the server closed it
// (aborted), or a deadline passed. One list for every session of this
// folder, so each component's fail(ec, what) ignores the same codes.
#include <boost/asio/error.hpp>
#include <boost/beast/core/error.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/system/error_code.hpp>

namespace sig::server {

inline bool expected_disconnect(boost::system::error_code ec) {
  return ec == boost::asio::error::operation_aborted || ec == boost::asio::error::eof ||
         ec == boost::asio::error::connection_reset || ec == boost::asio::error::broken_pipe ||
         ec == boost::beast::http::error::end_of_stream || ec == boost::beast::error::timeout;
}

}  // namespace sig::server
