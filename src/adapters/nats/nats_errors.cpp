#include "adapters/nats/nats_errors.hpp"

#include <nats/nats.h>

#include <string_view>

#include "ports/event_store.hpp"

namespace sig::nats {

namespace {

using service::append_error;

class nats_category_impl final : public std::error_category {
 public:
  char const* name() const noexcept override { return "nats"; }
  std::string message(int code) const override { return natsStatus_GetText(static_cast<natsStatus>(code)); }

  std::error_condition default_error_condition(int code) const noexcept override {
    switch (static_cast<natsStatus>(code)) {
      case NATS_TIMEOUT: return std::errc::timed_out;
      case NATS_CONNECTION_CLOSED:
      case NATS_CONNECTION_DISCONNECTED:
      case NATS_NOT_YET_CONNECTED: return std::errc::not_connected;
      case NATS_IO_ERROR: return std::errc::io_error;
      case NATS_NO_MEMORY: return std::errc::not_enough_memory;
      case NATS_INVALID_ARG: return std::errc::invalid_argument;
      case NATS_NOT_PERMITTED: return std::errc::operation_not_permitted;
      default: return {code, *this};
    }
  }

  bool equivalent(int code, std::error_condition const& condition) const noexcept override {
    if (condition.category() == service::append_category()) {
      switch (static_cast<append_error>(condition.value())) {
        case append_error::not_connected:
          return code == NATS_CONNECTION_CLOSED || code == NATS_CONNECTION_DISCONNECTED ||
                 code == NATS_NOT_YET_CONNECTED || code == NATS_NO_SERVER;
        case append_error::timed_out: return code == NATS_TIMEOUT;
        case append_error::refused: return code == NATS_NO_RESPONDERS;
        default: return false;
      }
    }
    return default_error_condition(code) == condition;
  }
};

class jetstream_category_impl final : public std::error_category {
 public:
  char const* name() const noexcept override { return "jetstream"; }
  // Worded for the codes this service meets; nats.c has no text for them.
  std::string message(int code) const override {
    switch (static_cast<jsErrCode>(code)) {
      case JSStreamNameExistErr: return "stream name already in use";
      case JSStreamNotFoundErr: return "stream not found";
      case JSStreamNotMatchErr: return "expected stream does not match";
      case JSStreamSubjectOverlapErr: return "subjects overlap with an existing stream";
      case JSStreamWrongLastSequenceErr: return "wrong last sequence";
      default: return "JetStream error " + std::to_string(code);
    }
  }
};

}  // namespace

std::error_category const& nats_category() {
  static nats_category_impl const category;
  return category;
}

std::error_category const& jetstream_category() {
  static jetstream_category_impl const category;
  return category;
}

std::error_code nats_error(natsStatus status) {
  if (status == NATS_OK) return {};
  return {static_cast<int>(status), nats_category()};
}

std::error_code nats_error(natsStatus status, jsErrCode jetstream_code) {
  if (status == NATS_OK) return {};
  if (static_cast<int>(jetstream_code) != 0) return jetstream_error(jetstream_code);
  return nats_error(status);
}

std::error_code jetstream_error(jsErrCode code) {
  if (static_cast<int>(code) == 0) return {};
  return {static_cast<int>(code), jetstream_category()};
}

bool connection_gone(std::error_code ec) { return ec == service::append_condition(append_error::not_connected); }

bool nats_outage(std::error_code ec) {
  return connection_gone(ec) || ec == service::append_condition(append_error::timed_out) ||
         ec == nats_error(NATS_IO_ERROR) || ec == nats_error(NATS_STALE_CONNECTION) ||
         ec == nats_error(NATS_NO_RESPONDERS);
}

std::string with_nats_trace(std::error_code ec) {
  char stack[512] = {0};
  nats_GetLastErrorStack(stack, sizeof stack);
  std::string text = ec.message();
  std::string frames;
  for (char c : std::string_view(stack)) frames += (c == '\n' || c == '\r') ? ' ' : c;
  while (!frames.empty() && frames.back() == ' ') frames.pop_back();
  if (!frames.empty()) text += " (" + frames + ")";
  return text;
}

}  // namespace sig::nats
