#pragma once
// What `sigstream-bench` reads from the machine it runs on: target URLs
// (loopback only), the server processes to watch and their /proc figures,
// and the open-file limit. No Beast, no sockets.
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sig::bench {

// ws://HOST:PORT/PATH with HOST a loopback address or "localhost".
struct target_url {
  std::string text;     // as given
  std::string address;  // IP literal to connect to (localhost -> 127.0.0.1)
  std::uint16_t port = 0;
  std::string host_header;  // HOST[:PORT] for the Host header
  std::string path;         // e.g. /ws
};

// Returns the parsed URL, or an error message saying why it was refused.
struct parsed_url {
  std::optional<target_url> url;
  std::string error;
};
parsed_url parse_loopback_url(std::string_view text);

// nats://127.0.0.1[:PORT] or nats://localhost[:PORT]: a bench fills and
// deletes streams, so never on a server that is not this machine's.
bool is_loopback_nats_url(std::string_view url);

std::vector<std::string> split_list(std::string_view text, char separator = ',');

// The highest signal rate the bench drives (--rates, --max-rate).
constexpr std::int64_t highest_signal_rate = 200'000;

// "1000, 5000": 1..20 rates per second, each a whole number in 1..highest;
// nullopt for anything else ("5e3", "200x", "-1", none).
std::optional<std::vector<std::int64_t>> parse_rates(std::string_view text, std::int64_t highest);

// A whole file (a /proc file, a log, a package.json); empty if unreadable.
std::string read_file(std::filesystem::path const& path);

// Raises the soft RLIMIT_NOFILE to the hard limit; returns the new soft limit.
std::uint64_t raise_open_file_limit();

enum class process_role { instance, nats, redis, haproxy, other };
std::string_view to_string(process_role role);

struct watched_process {
  std::string name;  // from --pids or the pid file's name (i1, nats, ...)
  int pid = 0;
  process_role role = process_role::other;
  std::string instance_id;                 // for instances, once known
  std::optional<std::uint16_t> port;       // NAME.port in a pid directory
  std::vector<std::string> command_line;   // /proc/PID/cmdline
};

// --pids name=pid,... (takes precedence) or every NAME.pid in a pid directory.
// Roles come from /proc/PID/comm. Dead pids are reported in `errors`.
struct process_list {
  std::vector<watched_process> processes;
  std::vector<std::string> errors;
  std::string source;  // "--pids", "pid directory DIR" or "none"
};
process_list find_processes(std::string const& pids_option, std::string const& pid_dir);

// /proc readers; nullopt when the process is gone.
std::optional<std::uint64_t> rss_kib(int pid);
std::optional<double> cpu_seconds(int pid);  // utime + stime
// The same to the nanosecond (every thread's run time from
// /proc/PID/task/*/schedstat): for windows of a few tens of milliseconds,
// where clock ticks of 10 ms say nothing. Threads that ended are not counted.
std::optional<double> cpu_seconds_exact(int pid);
// Voluntary + involuntary context switches summed over the process's threads.
std::optional<std::uint64_t> context_switches(int pid);
double own_cpu_seconds();                    // this process, all threads

// The value of `--NAME VALUE` or `--NAME=VALUE` in a command line.
std::optional<std::string> command_line_option(std::vector<std::string> const& args, std::string_view name);

// Facts about the machine for the report: nproc, CPU model, RAM, OS.
std::map<std::string, std::string> machine_facts();

}  // namespace sig::bench
