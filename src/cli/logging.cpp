#include "cli/logging.hpp"

#include <spdlog/async.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace sig::cli {

log_factory::log_factory(std::string const& instance_id, std::string const& level) {
  auto pool = std::make_shared<spdlog::details::thread_pool>(8192, 1);
  pool_ = pool;
  sink_ = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  sink_->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l instance=" + instance_id + " [%n] %v");
  level_ = spdlog::level::from_str(level);
  level_ok_ = level_ != spdlog::level::off || level == "off";
  if (!level_ok_) level_ = spdlog::level::info;
}

log_factory::~log_factory() = default;

std::shared_ptr<spdlog::logger> log_factory::make(std::string const& component) const {
  auto pool = std::static_pointer_cast<spdlog::details::thread_pool>(pool_);
  // Block rather than drop when the queue is full: an operator's log must
  // not lose the line that explains an incident.
  auto logger = std::make_shared<spdlog::async_logger>(component, sink_, pool, spdlog::async_overflow_policy::block);
  logger->set_level(level_);
  logger->flush_on(spdlog::level::warn);
  return logger;
}

}  // namespace sig::cli
