#pragma once
// service::event_store over NATS: appends and live feeds on the instance's
// data connection (driven by its I/O loop), blocking reads on a connection
// of their own (event_log), so that a room rebuild never waits behind the
// live traffic, nor the live traffic behind a rebuild.
#include "adapters/nats/data_connection.hpp"
#include "adapters/nats/event_log.hpp"
#include "ports/event_store.hpp"

namespace sig::nats {

class nats_event_store final : public service::event_store {
 public:
  nats_event_store(data_connection& data, event_log& reads) : data_(data), reads_(reads) {}

  domain::room_subjects subjects(std::string const& room_token) const override { return reads_.subjects(room_token); }
  bool ready() const override { return data_.connected() && reads_.ready(); }
  void append(std::string const& subject, std::string payload, std::string msg_id, service::append_kind kind,
              std::function<void(service::append_result)> done) override {
    data_.appends().append(subject, payload, msg_id, kind, std::move(done));
  }
  std::unique_ptr<service::live_follow> follow(std::string const& room_token,
                                               std::function<void(service::live_message)> on_message) override {
    return data_.live().follow(room_token, std::move(on_message));
  }
  bool head_after_follows(std::string const& subject,
                          std::function<void(std::optional<std::uint64_t>)> done) override {
    // A stream made without AllowDirect (an operator's), or replicated
    // (where a direct get can be answered by a replica that lags), takes
    // the blocking way.
    if (!reads_.direct_reads()) return false;
    data_.direct().read_head(reads_.stream_name(), subject, std::move(done));
    return true;
  }
  // Direct gets too, so the same two kinds of stream take the blocking way.
  bool read_newest(std::string const& subject,
                   std::function<void(std::optional<service::stored_message>)> done) override {
    if (!reads_.direct_reads()) return false;
    data_.direct().read_newest(reads_.stream_name(), subject, std::move(done));
    return true;
  }
  bool read_next(std::string const& subject, std::uint64_t from,
                 std::function<void(std::optional<service::stored_message>)> done) override {
    if (!reads_.direct_reads()) return false;
    data_.direct().read_next(reads_.stream_name(), subject, from, std::move(done));
    return true;
  }
  bool settle_follows() override { return data_.flush(); }
  service::stored_format const& format() const override { return reads_.format(); }
  std::optional<std::uint64_t> last_seq(std::string const& subject) override { return reads_.last_seq(subject); }
  std::optional<std::vector<service::stored_message>> read(std::string const& subject, std::uint64_t from,
                                                           std::uint64_t to) override {
    return reads_.read(subject, from, to);
  }
  std::optional<service::stored_message> last_message(std::string const& subject) override {
    return reads_.last_message(subject);
  }
  bool put_snapshot(std::string const& subject, std::string const& payload, std::string const& msg_id) override {
    return reads_.put_snapshot(subject, payload, msg_id);
  }

 private:
  data_connection& data_;
  event_log& reads_;
};

}  // namespace sig::nats
