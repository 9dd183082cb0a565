#include "ports/event_store.hpp"

namespace sig::service {

namespace {

class append_category_impl final : public std::error_category {
 public:
  char const* name() const noexcept override { return "sigstream.append"; }
  std::string message(int code) const override {
    switch (static_cast<append_error>(code)) {
      case append_error::not_connected: return "the event log is not reachable";
      case append_error::overloaded: return "too many appends waiting for the event log";
      case append_error::timed_out: return "no acknowledgement from the event log in time";
      case append_error::unconfirmed: return "a duplicate the event log could not show";
      case append_error::refused: return "the event log refused the append";
      case append_error::failed: return "the append could not be sent";
      case append_error::closing: return "the event log is closing";
    }
    return "unknown append error";
  }
};

}  // namespace

std::error_category const& append_category() {
  static append_category_impl const category;
  return category;
}

}  // namespace sig::service
