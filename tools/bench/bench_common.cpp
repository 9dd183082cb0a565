#include "bench/bench_common.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <ctime>
#include <fstream>
#include <iostream>
#include <thread>

#include "bench/bench_system.hpp"
#include "protocol/messages.hpp"

extern char** environ;

namespace sig::bench {

std::string utc_now(char const* format) {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[32];
  std::strftime(text, sizeof text, format, &tm);
  return text;
}

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double seconds_since(steady::time_point start) {
  return std::chrono::duration<double>(steady::now() - start).count();
}

double ms_between(steady::time_point from, steady::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  in >> one >> five >> fifteen;
  return in ? one + " " + five + " " + fifteen : std::string("unknown");
}

std::string resolved_path(std::string const& path) {
  char buffer[4096];
  ssize_t n = readlink(path.c_str(), buffer, sizeof buffer - 1);
  return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : path;
}

std::vector<std::string> clean_environment() {
  std::vector<std::string> out;
  for (char** e = environ; *e != nullptr; ++e)
    if (std::strncmp(*e, "SIGSTREAM_", 10) != 0) out.emplace_back(*e);
  return out;
}

std::optional<std::string> make_temp_dir(std::string const& prefix, std::string* error) {
  std::error_code ec;
  auto base = std::filesystem::temp_directory_path(ec);
  std::string path = ((ec ? std::filesystem::path("/tmp") : base) / (prefix + "XXXXXX")).string();
  if (mkdtemp(path.data()) == nullptr) {
    *error = std::string("cannot create a temporary directory: ") + std::strerror(errno);
    return std::nullopt;
  }
  return path;
}

std::optional<std::uint16_t> free_port() {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::nullopt;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t size = sizeof address;
  std::optional<std::uint16_t> port;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0)
    port = ntohs(address.sin_port);
  close(fd);
  return port;
}

std::string product_binary_beside_this_one() {
  // Resolved, so that a symlink to sigstream-bench elsewhere still finds
  // the sigstream it was built or installed with.
  return (std::filesystem::path(resolved_path("/proc/self/exe")).parent_path() / "sigstream").string();
}

spawned_child spawn_child(std::vector<std::string> args, child_output const& output, child_environment environment) {
  spawned_child child;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  if (output.stdout_fd >= 0) posix_spawn_file_actions_adddup2(&actions, output.stdout_fd, STDOUT_FILENO);
  if (output.stderr_fd >= 0) posix_spawn_file_actions_adddup2(&actions, output.stderr_fd, STDERR_FILENO);
  if (!output.log_path.empty()) {
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, output.log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_storage;
  std::vector<char*> envp;
  if (environment == child_environment::without_sigstream_variables) {
    env_storage = clean_environment();
    for (auto& e : env_storage) envp.push_back(e.data());
    envp.push_back(nullptr);
  }
  child.started = steady::now();
  int spawned = posix_spawn(&child.pid, argv[0], &actions, nullptr, argv.data(), envp.empty() ? environ : envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    child.pid = 0;
    child.error = fmt::format("cannot start {}: {}", args[0], std::strerror(spawned));
  }
  return child;
}

bool child_process::spawn(std::vector<std::string> args, std::string const& log_path, child_environment environment,
                          std::string& error) {
  auto child = spawn_child(std::move(args), {-1, -1, log_path}, environment);
  pid_ = child.pid;
  started_ = child.started;
  error = child.error;
  return pid_ != 0;
}

bool child_process::exited() {
  if (pid_ == 0) return true;
  int status = 0;
  pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_ || (r < 0 && errno == ECHILD)) {
    record(status, r == pid_);
    return true;
  }
  return false;
}

double child_process::stop(std::chrono::milliseconds limit) {
  if (exited()) return 0;
  auto start = steady::now();
  kill(pid_, SIGTERM);
  while (steady::now() - start < limit) {
    if (exited()) return ms_between(start, steady::now());
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  kill_now();
  return -1;
}

void child_process::kill_now() {
  if (pid_ == 0) return;
  kill(pid_, SIGKILL);
  int status = 0;
  pid_t r = 0;
  while ((r = waitpid(pid_, &status, 0)) < 0 && errno == EINTR) {
  }
  record(status, r == pid_);
  how_ended_ = "killed (SIGKILL)";
}

void child_process::record(int status, bool reaped) {
  pid_ = 0;
  if (!reaped) return;
  if (WIFEXITED(status)) {
    exit_code_ = WEXITSTATUS(status);
    how_ended_ = fmt::format("exit code {}", exit_code_);
  } else if (WIFSIGNALED(status)) {
    how_ended_ = fmt::format("signal {}", WTERMSIG(status));
  }
}

spread spread_of(std::vector<double> values) {
  spread s;
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  s.min = values.front();
  s.max = values.back();
  std::size_t n = values.size();
  s.median = n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
  return s;
}

nats::log_settings fill_log_settings(std::string const& url, std::string const& stream, std::string const& prefix,
                                     std::string const& client_name) {
  nats::log_settings ls;
  ls.url = url;
  ls.stream = stream;
  ls.subject_prefix = prefix;
  ls.create_stream = true;
  ls.max_age = std::chrono::seconds(0);
  ls.max_bytes = 8LL << 30;
  ls.send_asap = false;
  ls.connect_attempts = 3;
  ls.client_name = client_name;
  return ls;
}

bool publish_window::acquire(std::chrono::milliseconds stall) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, stall, [&] { return in_flight_ < limit_; }) && (++in_flight_, true);
}

void publish_window::done(nats::append_result const& r) {
  std::lock_guard lock(mutex_);
  --in_flight_;
  if (r.ok && !r.duplicate) {
    ++acked_;
  } else {
    ++failed_;
    if (first_error_.empty()) first_error_ = r.ok ? "stored as a duplicate" : r.error.message() + (r.detail.empty() ? "" : ": " + r.detail);
  }
  changed_.notify_all();
}

bool publish_window::drain(std::chrono::milliseconds limit) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, limit, [&] { return in_flight_ == 0; });
}

std::uint64_t publish_window::acked() {
  std::lock_guard lock(mutex_);
  return acked_;
}

std::uint64_t publish_window::failed() {
  std::lock_guard lock(mutex_);
  return failed_;
}

std::string publish_window::first_error() {
  std::lock_guard lock(mutex_);
  return first_error_;
}

std::optional<std::map<std::string, std::uint64_t>> stream_counts(nats::event_log& log, std::string const& prefix) {
  auto subjects = log.subjects_matching(prefix + ".room.>");
  if (!subjects) return std::nullopt;
  std::map<std::string, std::uint64_t> out;
  for (auto const& s : *subjects) out[s.subject] = s.messages;
  return out;
}

std::optional<std::map<std::string, std::uint64_t>> open_stream(nats::event_log& log, std::string const& who,
                                                                std::string const& url, std::string const& stream,
                                                                std::string const& prefix) {
  std::atomic<bool> never{false};
  if (!log.start(never)) {
    std::cerr << fmt::format("{}: cannot use stream {} at {}\n", who, stream, url);
    return std::nullopt;
  }
  auto counts = stream_counts(log, prefix);
  if (!counts) std::cerr << who << ": cannot read the stream's subjects\n";
  return counts;
}

std::map<std::string, std::string> machine_with_load(std::string const& load_at_start) {
  auto machine = machine_facts();
  // machine_line names these: the report carries them even when unknown.
  for (char const* key : {"nproc", "cpu", "ram_gib", "os", "kernel"}) machine[key];
  machine["load_average_at_start"] = load_at_start;
  machine["load_average_at_end"] = load_average();
  return machine;
}

std::string machine_line(std::map<std::string, std::string> const& machine) {
  auto at = [&](char const* key) {
    auto it = machine.find(key);
    return it == machine.end() ? std::string() : it->second;
  };
  return fmt::format("machine: {} CPUs ({}), {} GiB RAM, {}, kernel {}; load average {} at start, {} at end\n",
                     at("nproc"), at("cpu"), at("ram_gib"), at("os"), at("kernel"), at("load_average_at_start"),
                     at("load_average_at_end"));
}

std::string json_members(std::map<std::string, std::string> const& values) {
  std::string out;
  for (auto const& [k, v] : values)
    out += fmt::format("{}{}:{}", out.empty() ? "" : ",", protocol::json_quote(k), protocol::json_quote(v));
  return out;
}

bool deliver_report(std::string const& text, std::string const& json, std::string const& report,
                    std::string const& who) {
  std::cout << text << std::flush;
  if (report.empty()) {
    std::cout << json << std::flush;
    return true;
  }
  std::ofstream out(report, std::ios::trunc);
  out << json;
  if (!out) {
    std::cerr << who << ": cannot write " << report << "\n";
    return false;
  }
  return true;
}

}  // namespace sig::bench
