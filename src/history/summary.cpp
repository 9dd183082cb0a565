#include "history/summary.hpp"

namespace sig::history {

std::string summarize_signal(std::string_view data_json) {
  return std::to_string(data_json.size()) + " bytes";  // TODO(helper): SDP and ICE summaries
}

}  // namespace sig::history
