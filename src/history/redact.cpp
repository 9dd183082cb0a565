#include "history/redact.hpp"

namespace sig::history {

std::string redact_addresses(std::string_view text) {
  return std::string(text);  // TODO(helper)
}

}  // namespace sig::history
