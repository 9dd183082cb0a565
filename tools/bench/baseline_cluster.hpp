#pragma once
// The classic design sigstream-bench compares sigstream with, started by the
// bench for one run: N `node server.mjs` (Socket.IO with
// @socket.io/redis-adapter), one redis-server and HAProxy in `mode tcp`
// (tools/bench/baseline/), each on a free loopback port, with their files in
// a fresh temp dir, and stopped by their pids.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_common.hpp"
#include "bench/bench_system.hpp"

namespace sig::bench {

struct baseline_settings {
  std::string dir;  // holds server.mjs and haproxy.cfg
  int instances = 2;
  std::chrono::milliseconds ready_timeout{30'000};
  std::chrono::milliseconds stop_timeout{10'000};
};

class baseline_cluster {
 public:
  // Starts everything and waits until HAProxy has reached every instance;
  // nullptr with `error` saying why (a missing program or node module, a
  // process that exited or was not ready in time, with its log's tail).
  static std::unique_ptr<baseline_cluster> start(baseline_settings const& settings, std::string& error);

  baseline_cluster(baseline_cluster const&) = delete;
  baseline_cluster& operator=(baseline_cluster const&) = delete;
  ~baseline_cluster() { stop(true); }

  // SIGTERM to each process (HAProxy first, Redis last), SIGKILL past the
  // stop timeout. The temp dir goes too unless `keep_files` (then it is
  // named on stderr).
  void stop(bool keep_files);

  std::string url() const;  // through HAProxy, on Socket.IO's WebSocket path
  std::vector<watched_process> processes() const;
  std::string description() const;  // what runs, with versions
  std::string const& directory() const { return dir_; }

 private:
  struct member {
    std::string name;  // b1.., redis, haproxy
    process_role role = process_role::other;
    std::uint16_t port = 0;
    std::unique_ptr<child_process> process;
    std::string log_path;
    std::string spawn_error;  // empty: it started
  };

  explicit baseline_cluster(baseline_settings settings) : settings_(std::move(settings)) {}
  bool start_all(std::string& error);
  member& spawn(std::string name, process_role role, std::uint16_t port, std::vector<std::string> args);
  std::string failed(member const& m, std::string const& what) const;

  baseline_settings settings_;
  std::string dir_;
  std::uint16_t lb_port_ = 0;
  std::vector<member> members_;  // in start order
  std::string versions_;
  bool stopped_ = false;
};

}  // namespace sig::bench
