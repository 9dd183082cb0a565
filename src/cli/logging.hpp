#pragma once
#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace sig::cli {

// Named loggers sharing one asynchronous stderr sink; every line names the
// instance. Created in main and passed down, never registered globally.
class log_factory {
 public:
  log_factory(std::string const& instance_id, std::string const& level);
  ~log_factory();
  std::shared_ptr<spdlog::logger> make(std::string const& component) const;
  bool level_ok() const { return level_ok_; }

 private:
  std::shared_ptr<void> pool_;
  spdlog::sink_ptr sink_;
  spdlog::level::level_enum level_;
  bool level_ok_ = true;
};

}  // namespace sig::cli
