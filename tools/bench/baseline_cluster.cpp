#include "bench/baseline_cluster.hpp"

#include <unistd.h>

#include <fmt/format.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <future>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <thread>

#include "bench/bench_client.hpp"

namespace sig::bench {

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;

// A path as reports show it: relative to the working directory (the
// checkout) when it lies below it, so that reports name no machine's paths.
std::string shown_path(fs::path const& p) {
  std::error_code ec;
  auto cwd = fs::current_path(ec);
  if (!ec) {
    auto relative = fs::weakly_canonical(p, ec).lexically_relative(fs::weakly_canonical(cwd, ec));
    if (!ec && !relative.empty() && *relative.begin() != "..") return relative.string();
  }
  return p.filename().string();
}

using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

std::string tail(std::string const& path, std::size_t lines) {
  std::string text = read_file(path);
  std::size_t at = text.size();
  for (std::size_t n = 0; n <= lines && at != std::string::npos && at > 0; ++n) at = text.rfind('\n', at - 1);
  return at == std::string::npos ? text : text.substr(at + 1);
}

// nats-server and haproxy live in /usr/sbin, which is not always on PATH
// (as for the test harness).
std::optional<std::string> find_program(std::string const& name) {
  std::vector<std::string> dirs;
  if (char const* path = std::getenv("PATH")) dirs = split_list(path, ':');
  for (char const* extra : {"/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/local/bin", "/usr/bin"}) dirs.push_back(extra);
  for (auto const& dir : dirs) {
    auto candidate = fs::path(dir) / name;
    std::error_code ec;
    if (fs::is_regular_file(candidate, ec) && access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return std::nullopt;
}

// The version field of node_modules/PACKAGE/package.json, looking upward
// from `dir` as Node resolves a bare import; empty when not installed.
std::string installed_version(fs::path dir, std::string const& package) {
  for (int depth = 0; depth < 8 && !dir.empty(); ++depth, dir = dir.parent_path()) {
    std::string text = read_file(dir / "node_modules" / package / "package.json");
    auto key = text.find("\"version\"");
    if (key != std::string::npos) {
      auto open = text.find('"', text.find(':', key) + 1);
      auto close = text.find('"', open + 1);
      if (open != std::string::npos && close != std::string::npos) return text.substr(open + 1, close - open - 1);
    }
    if (dir == dir.parent_path()) break;
  }
  return {};
}

// The first line a program prints for its version option (bounded: 5 s).
std::string version_line(std::string const& program, std::string const& option, std::string const& dir) {
  std::string log = fmt::format("{}/version-{}.txt", dir, fs::path(program).filename().string());
  child_process child;
  std::string error;
  if (!child.spawn({program, option}, log, child_environment::without_sigstream_variables, error)) return "?";
  auto deadline = steady::now() + 5s;
  while (!child.exited() && steady::now() < deadline) std::this_thread::sleep_for(10ms);
  child.stop(1s);
  std::string text = read_file(log);
  auto line = text.substr(0, text.find('\n'));
  return line.empty() ? "?" : line;
}

bool accepts_connections(std::uint16_t port) {
  asio::io_context io;
  tcp::socket socket(io);
  boost::system::error_code ec;
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  return !ec;
}

// Runs an io_context on a thread of its own for the readiness checks.
class io_thread {
 public:
  io_thread() : thread_([this] { io_.run(); }) {}
  ~io_thread() {
    work_.reset();
    io_.stop();
    thread_.join();
  }
  asio::io_context& io() { return io_; }

 private:
  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_{io_.get_executor()};
  std::thread thread_;
};

}  // namespace

std::unique_ptr<baseline_cluster> baseline_cluster::start(baseline_settings const& settings, std::string& error) {
  std::unique_ptr<baseline_cluster> cluster(new baseline_cluster(settings));
  if (!cluster->start_all(error)) {
    cluster->stop(true);
    return nullptr;
  }
  return cluster;
}

baseline_cluster::member& baseline_cluster::spawn(std::string name, process_role role, std::uint16_t port,
                                                  std::vector<std::string> args) {
  member m;
  m.name = std::move(name);
  m.role = role;
  m.port = port;
  m.log_path = fmt::format("{}/{}.log", dir_, m.name);
  m.process = std::make_unique<child_process>();
  m.process->spawn(std::move(args), m.log_path, child_environment::without_sigstream_variables, m.spawn_error);
  members_.push_back(std::move(m));
  return members_.back();
}

std::string baseline_cluster::failed(member const& m, std::string const& what) const {
  return fmt::format("baseline {} {} (port {}, {}); the last lines of {}:\n{}", m.name, what, m.port,
                     m.process->how_ended(), m.log_path, tail(m.log_path, 15));
}

bool baseline_cluster::start_all(std::string& error) {
  auto server = fs::path(settings_.dir) / "server.mjs";
  auto lb_template = fs::path(settings_.dir) / "haproxy.cfg";
  std::error_code ec;
  if (!fs::is_regular_file(server, ec) || !fs::is_regular_file(lb_template, ec)) {
    error = fmt::format("no {} and {} (--baseline-dir is the baseline's folder, tools/bench/baseline)", server.string(),
                        lb_template.string());
    return false;
  }
  std::map<std::string, std::optional<std::string>> programs;
  std::string missing;
  for (char const* name : {"node", "redis-server", "haproxy"}) {
    programs[name] = find_program(name);
    if (!programs[name]) missing += (missing.empty() ? "" : ", ") + std::string(name);
  }
  if (!missing.empty()) {
    error = fmt::format("the Socket.IO baseline needs node, redis-server and haproxy; not found on PATH (or in "
                        "/usr/sbin, /usr/local/sbin): {}. On Debian: apt-get install nodejs redis-server haproxy",
                        missing);
    return false;
  }
  std::map<std::string, std::string> packages;
  for (char const* package : {"socket.io", "@socket.io/redis-adapter", "redis", "engine.io", "ws"}) {
    packages[package] = installed_version(fs::absolute(settings_.dir), package);
    if (packages[package].empty() && std::string(package) != "engine.io" && std::string(package) != "ws")
      missing += (missing.empty() ? "" : ", ") + std::string(package);
  }
  if (!missing.empty()) {
    error = fmt::format("node modules missing for the baseline: {} (install them from the checkout's "
                        "package-lock.json: `npm ci`, or `scripts/dev install`)",
                        missing);
    return false;
  }

  auto dir = make_temp_dir("sigstream-bench-baseline-", &error);
  if (!dir) return false;
  dir_ = *dir;
  members_.reserve(static_cast<std::size_t>(settings_.instances) + 2);  // spawn() hands out references
  // Redis's and the instances'; HAProxy's is picked when it starts.
  std::vector<std::uint16_t> ports;
  for (int i = 0; i < settings_.instances + 1; ++i) {
    auto port = free_port();
    if (!port) {
      error = "no free loopback port";
      return false;
    }
    ports.push_back(*port);
  }
  auto deadline = steady::now() + settings_.ready_timeout;
  io_thread checks;

  // Redis: pub/sub for the adapter and the member sets. No persistence.
  std::uint16_t redis_port = ports[0];
  auto& redis = spawn("redis", process_role::redis, redis_port,
                      {*programs["redis-server"], "--port", std::to_string(redis_port), "--bind", "127.0.0.1",
                       "--save", "", "--appendonly", "no", "--dir", dir_});
  if (!redis.spawn_error.empty()) return error = redis.spawn_error, false;
  while (!accepts_connections(redis_port)) {
    if (redis.process->exited()) return error = failed(redis, "exited at start"), false;
    if (steady::now() >= deadline) return error = failed(redis, "did not listen in time"), false;
    std::this_thread::sleep_for(20ms);
  }

  // The instances, all at once; each ready when /healthz answers 200.
  std::string servers;
  for (int i = 0; i < settings_.instances; ++i) {
    std::string id = fmt::format("b{}", i + 1);
    std::uint16_t port = ports[static_cast<std::size_t>(i) + 1];
    spawn(id, process_role::instance, port,
          {*programs["node"], server.string(), "--port", std::to_string(port), "--instance-id", id, "--redis-url",
           fmt::format("redis://127.0.0.1:{}", redis_port)});
    servers += fmt::format("    server {} 127.0.0.1:{} check\n", id, port);
  }
  for (auto& m : members_) {
    if (m.role != process_role::instance) continue;
    if (!m.spawn_error.empty()) return error = m.spawn_error, false;
    if (!wait_for_status_200(checks.io(), m.port, "/healthz", deadline, [&] { return m.process->exited(); }))
      return error = failed(m, m.process->exited() ? "exited at start" : "did not answer /healthz 200 in time"), false;
  }

  // HAProxy, rendered from the template; ready once it has sent requests to
  // every instance (leastconn spreads fresh connections over idle servers).
  // Its port is picked now, not with the others: while Redis and the
  // instances started, a port found free back then can be taken (an
  // outgoing connection's ephemeral port; seen in the suite).
  auto lb_port = free_port();
  if (!lb_port) return error = "no free loopback port", false;
  lb_port_ = *lb_port;
  std::string config = read_file(lb_template);
  auto put = [&](std::string const& placeholder, std::string const& value) {
    auto at = config.find(placeholder);
    if (at != std::string::npos) config.replace(at, placeholder.size(), value);
  };
  put("    # @SERVERS@\n", servers);
  put("@BIND@", fmt::format("127.0.0.1:{}", lb_port_));
  // HAProxy refuses to start when maxconn needs more descriptors (about 2
  // per connection) than it may open; children inherit the bench's limit.
  std::uint64_t open_files = raise_open_file_limit();
  put("@MAXCONN@", std::to_string(std::clamp<std::uint64_t>(open_files > 200 ? (open_files - 100) / 2 : 0, 100, 20'000)));
  std::string config_path = dir_ + "/haproxy.cfg";
  std::ofstream(config_path) << config;
  auto& lb = spawn("haproxy", process_role::haproxy, lb_port_, {*programs["haproxy"], "-db", "-f", config_path});
  if (!lb.spawn_error.empty()) return error = lb.spawn_error, false;
  std::set<std::string> reached;
  auto endpoint = tcp::endpoint(asio::ip::make_address("127.0.0.1"), lb_port_);
  while (reached.size() < static_cast<std::size_t>(settings_.instances)) {
    if (lb.process->exited()) return error = failed(lb, "exited at start"), false;
    if (steady::now() >= deadline) return error = failed(lb, "did not reach every instance in time"), false;
    auto answer = std::make_shared<std::promise<http_result>>();
    auto future = answer->get_future();
    http_get(checks.io(), endpoint, fmt::format("127.0.0.1:{}", lb_port_), "/healthz", 1s,
             [answer](http_result r) { answer->set_value(std::move(r)); });
    if (future.wait_for(2s) == std::future_status::ready) {
      auto r = future.get();
      // The body is "ok <instance id>".
      if (r.ok && r.status == 200 && r.body.rfind("ok ", 0) == 0) reached.insert(r.body.substr(3, r.body.find('\n') - 3));
    }
    std::this_thread::sleep_for(20ms);
  }

  versions_ = fmt::format("node {}, socket.io {} (engine.io {}, ws {}), @socket.io/redis-adapter {}, redis (client) {}; "
                          "{}; {}",
                          version_line(*programs["node"], "--version", dir_), packages["socket.io"],
                          packages["engine.io"], packages["ws"], packages["@socket.io/redis-adapter"],
                          packages["redis"], version_line(*programs["redis-server"], "--version", dir_),
                          version_line(*programs["haproxy"], "-v", dir_));
  return true;
}

void baseline_cluster::stop(bool keep_files) {
  if (stopped_) return;
  stopped_ = true;
  // HAProxy first (no new connections), then the instances, Redis last.
  for (auto it = members_.rbegin(); it != members_.rend(); ++it)
    if (it->role == process_role::haproxy) it->process->stop(settings_.stop_timeout);
  for (auto& m : members_)
    if (m.role == process_role::instance) m.process->stop(settings_.stop_timeout);
  for (auto& m : members_)
    if (m.role == process_role::redis) m.process->stop(settings_.stop_timeout);
  if (dir_.empty()) return;
  if (keep_files) {
    std::cerr << "bench: the baseline's files (logs, haproxy.cfg) are kept in " << dir_ << "\n";
    return;
  }
  std::error_code ec;
  fs::remove_all(dir_, ec);
}

std::string baseline_cluster::url() const {
  return fmt::format("ws://127.0.0.1:{}/socket.io/?EIO=4&transport=websocket", lb_port_);
}

std::vector<watched_process> baseline_cluster::processes() const {
  std::vector<watched_process> out;
  for (auto const& m : members_) {
    watched_process p;
    p.name = m.name;
    p.pid = m.process->pid();
    p.role = m.role;
    if (m.role == process_role::instance) p.instance_id = m.name;
    out.push_back(std::move(p));
  }
  return out;
}

std::string baseline_cluster::description() const {
  return fmt::format("Socket.IO baseline: {} x node {} behind HAProxy (mode tcp, leastconn), Redis for the adapter and "
                     "the member sets; {}",
                     settings_.instances, shown_path(fs::path(settings_.dir) / "server.mjs"), versions_);
}

}  // namespace sig::bench
