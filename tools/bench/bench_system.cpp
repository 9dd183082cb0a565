#include "bench/bench_system.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <boost/asio/ip/address.hpp>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

namespace sig::bench {

std::string read_file(std::filesystem::path const& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

namespace {

std::string trim(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  return std::string(text);
}

std::optional<int> parse_pid(std::string_view text) {
  std::string t = trim(text);
  if (t.empty() || t.size() > 9) return std::nullopt;
  int pid = 0;
  for (char c : t) {
    if (c < '0' || c > '9') return std::nullopt;
    pid = pid * 10 + (c - '0');
  }
  return pid > 0 ? std::optional<int>(pid) : std::nullopt;
}

process_role role_from_comm(std::string const& comm) {
  if (comm.rfind("sigstream", 0) == 0) return process_role::instance;  // also copies like sigstream-old
  if (comm == "nats-server") return process_role::nats;
  if (comm.rfind("redis-server", 0) == 0) return process_role::redis;
  if (comm == "haproxy") return process_role::haproxy;
  return process_role::other;
}

std::vector<std::string> read_command_line(int pid) {
  std::string raw = read_file("/proc/" + std::to_string(pid) + "/cmdline");
  std::vector<std::string> args;
  std::string current;
  for (char c : raw) {
    if (c == '\0') {
      args.push_back(std::move(current));
      current.clear();
    } else {
      current += c;
    }
  }
  if (!current.empty()) args.push_back(std::move(current));
  return args;
}

// Fills role and command line; false when the pid is not a live process.
bool describe(watched_process& p) {
  std::string comm = trim(read_file("/proc/" + std::to_string(p.pid) + "/comm"));
  if (comm.empty()) return false;
  p.command_line = read_command_line(p.pid);
  p.role = role_from_comm(comm);
  // A renamed copy of the binary still runs `sigstream serve`.
  if (p.role == process_role::other && p.command_line.size() >= 2 && p.command_line[1] == "serve")
    p.role = process_role::instance;
  if (p.role == process_role::instance) {
    if (auto id = command_line_option(p.command_line, "instance-id")) p.instance_id = *id;
  }
  return true;
}

}  // namespace

std::optional<std::vector<std::int64_t>> parse_rates(std::string_view text, std::int64_t highest) {
  constexpr std::size_t most = 20;
  auto items = split_list(text);
  if (items.empty() || items.size() > most) return std::nullopt;
  std::vector<std::int64_t> rates;
  for (auto const& item : items) {
    std::int64_t rate = 0;
    auto [end, ec] = std::from_chars(item.data(), item.data() + item.size(), rate);
    if (ec != std::errc{} || end != item.data() + item.size() || rate < 1 || rate > highest) return std::nullopt;
    rates.push_back(rate);
  }
  return rates;
}

std::vector<std::string> split_list(std::string_view text, char separator) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= text.size()) {
    auto end = text.find(separator, start);
    if (end == std::string_view::npos) end = text.size();
    std::string item = trim(text.substr(start, end - start));
    if (!item.empty()) out.push_back(std::move(item));
    start = end + 1;
  }
  return out;
}

bool is_loopback_nats_url(std::string_view url) {
  for (std::string_view host : {"nats://127.0.0.1", "nats://localhost"}) {
    if (!url.starts_with(host)) continue;
    std::string_view rest = url.substr(host.size());
    if (rest.empty()) return true;
    if (rest.front() != ':' || rest.size() < 2) return false;
    return rest.substr(1).find_first_not_of("0123456789") == std::string_view::npos;
  }
  return false;
}

parsed_url parse_loopback_url(std::string_view text) {
  parsed_url out;
  std::string_view rest = text;
  if (rest.rfind("ws://", 0) == 0) {
    rest.remove_prefix(5);
  } else if (rest.rfind("http://", 0) == 0) {
    rest.remove_prefix(7);
  } else {
    out.error = "'" + std::string(text) + "' is not a ws:// URL (wss is not supported: the bench drives loopback only)";
    return out;
  }
  auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  std::string host;
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) {
      out.error = "'" + std::string(text) + "': unterminated [IPv6] host";
      return out;
    }
    host = std::string(authority.substr(1, close - 1));
    if (close + 1 < authority.size() && authority[close + 1] == ':') port_text = authority.substr(close + 2);
  } else {
    auto colon = authority.rfind(':');
    host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  int port = 80;
  if (!port_text.empty()) {
    port = 0;
    for (char c : port_text) {
      if (c < '0' || c > '9' || port > 65535) {
        out.error = "'" + std::string(text) + "': bad port";
        return out;
      }
      port = port * 10 + (c - '0');
    }
  }
  if (port <= 0 || port > 65535) {
    out.error = "'" + std::string(text) + "': bad port";
    return out;
  }
  std::string address;
  if (host == "localhost") {
    address = "127.0.0.1";
  } else {
    boost::system::error_code ec;
    auto parsed = boost::asio::ip::make_address(host, ec);
    if (ec) {
      out.error = "'" + std::string(text) + "': host '" + host +
                  "' is not an IP literal or localhost (the bench only drives loopback addresses)";
      return out;
    }
    if (!parsed.is_loopback()) {
      out.error = "'" + std::string(text) + "': " + host +
                  " is not a loopback address; the bench only drives 127.0.0.0/8, ::1 and localhost";
      return out;
    }
    address = parsed.to_string();
  }
  target_url url;
  url.text = std::string(text);
  url.address = address;
  url.port = static_cast<std::uint16_t>(port);
  url.host_header = std::string(authority);
  url.path = path;
  out.url = std::move(url);
  return out;
}

std::uint64_t raise_open_file_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  return static_cast<std::uint64_t>(limit.rlim_cur);
}

std::string_view to_string(process_role role) {
  switch (role) {
    case process_role::instance: return "instance";
    case process_role::nats: return "nats-server";
    case process_role::redis: return "redis-server";
    case process_role::haproxy: return "haproxy";
    case process_role::other: return "other";
  }
  return "other";
}

process_list find_processes(std::string const& pids_option, std::string const& pid_dir) {
  process_list out;
  if (!pids_option.empty()) {
    out.source = "--pids";
    for (auto const& item : split_list(pids_option)) {
      auto eq = item.find('=');
      auto pid = eq == std::string::npos ? std::nullopt : parse_pid(std::string_view(item).substr(eq + 1));
      if (!pid) {
        out.errors.push_back("--pids: '" + item + "' is not NAME=PID");
        continue;
      }
      watched_process p;
      p.name = item.substr(0, eq);
      p.pid = *pid;
      if (!describe(p)) {
        out.errors.push_back("--pids: " + p.name + " (pid " + std::to_string(p.pid) + ") is not running");
        continue;
      }
      out.processes.push_back(std::move(p));
    }
    return out;
  }
  std::error_code ec;
  if (pid_dir.empty() || !std::filesystem::is_directory(pid_dir, ec)) {
    out.source = "none";
    return out;
  }
  out.source = "pid directory " + pid_dir;
  std::vector<std::filesystem::path> files;
  for (auto const& entry : std::filesystem::directory_iterator(pid_dir, ec))
    if (entry.path().extension() == ".pid") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  for (auto const& file : files) {
    watched_process p;
    p.name = file.stem().string();
    auto pid = parse_pid(read_file(file));
    if (!pid) {
      out.errors.push_back(file.string() + " holds no pid");
      continue;
    }
    p.pid = *pid;
    if (!describe(p)) {
      out.errors.push_back(p.name + " (pid " + std::to_string(p.pid) + ", from " + file.string() + ") is not running");
      continue;
    }
    auto port_file = file;
    port_file.replace_extension(".port");
    std::string port_text = trim(read_file(port_file));
    if (auto port = parse_pid(port_text); port && *port < 65536) p.port = static_cast<std::uint16_t>(*port);
    out.processes.push_back(std::move(p));
  }
  return out;
}

std::optional<std::uint64_t> rss_kib(int pid) {
  std::string status = read_file("/proc/" + std::to_string(pid) + "/status");
  auto at = status.find("VmRSS:");
  if (at == std::string::npos) return std::nullopt;
  std::istringstream in(status.substr(at + 6));
  std::uint64_t kib = 0;
  if (!(in >> kib)) return std::nullopt;
  return kib;
}

std::optional<double> cpu_seconds(int pid) {
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  auto close = stat.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  // After "pid (comm) " come the fields from 3 (state) on; utime is 14, stime 15.
  std::istringstream in(stat.substr(close + 2));
  std::string field;
  std::uint64_t utime = 0, stime = 0;
  for (int index = 3; index <= 15 && (in >> field); ++index) {
    if (index == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (index == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
  }
  if (!in) return std::nullopt;
  static long const ticks = sysconf(_SC_CLK_TCK);
  return static_cast<double>(utime + stime) / static_cast<double>(ticks > 0 ? ticks : 100);
}

std::optional<double> cpu_seconds_exact(int pid) {
  std::error_code ec;
  std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
  std::uint64_t ns = 0;
  bool any = false;
  for (auto const& entry : std::filesystem::directory_iterator(tasks, ec)) {
    std::string text = read_file(entry.path() / "schedstat");
    if (text.empty()) continue;  // the thread ended meanwhile
    ns += std::strtoull(text.c_str(), nullptr, 10);
    any = true;
  }
  if (!any) return std::nullopt;
  return static_cast<double>(ns) / 1e9;
}

std::optional<std::uint64_t> context_switches(int pid) {
  std::error_code ec;
  std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
  std::uint64_t total = 0;
  bool any = false;
  for (auto const& entry : std::filesystem::directory_iterator(tasks, ec)) {
    std::istringstream status(read_file(entry.path() / "status"));
    for (std::string line; std::getline(status, line);) {
      if (line.rfind("voluntary_ctxt_switches:", 0) == 0 || line.rfind("nonvoluntary_ctxt_switches:", 0) == 0) {
        total += std::strtoull(line.c_str() + line.find(':') + 1, nullptr, 10);
        any = true;
      }
    }
  }
  if (!any) return std::nullopt;
  return total;
}

double own_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](timeval const& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

std::optional<std::string> command_line_option(std::vector<std::string> const& args, std::string_view name) {
  std::string flag = "--" + std::string(name);
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == flag && i + 1 < args.size()) return args[i + 1];
    if (args[i].rfind(flag + "=", 0) == 0) return args[i].substr(flag.size() + 1);
  }
  return std::nullopt;
}

std::map<std::string, std::string> machine_facts() {
  std::map<std::string, std::string> facts;
  facts["nproc"] = std::to_string(std::thread::hardware_concurrency());
  std::istringstream cpuinfo(read_file("/proc/cpuinfo"));
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      facts["cpu"] = trim(line.substr(line.find(':') + 1));
      break;
    }
  }
  std::istringstream meminfo(read_file("/proc/meminfo"));
  for (std::string line; std::getline(meminfo, line);) {
    if (line.rfind("MemTotal:", 0) == 0) {
      std::istringstream in(line.substr(9));
      std::uint64_t kib = 0;
      in >> kib;
      facts["ram_gib"] = std::to_string((kib + (1 << 19)) >> 20);
      break;
    }
  }
  std::istringstream os(read_file("/etc/os-release"));
  for (std::string line; std::getline(os, line);) {
    if (line.rfind("PRETTY_NAME=", 0) == 0) {
      std::string value = line.substr(12);
      value.erase(std::remove(value.begin(), value.end(), '"'), value.end());
      facts["os"] = value;
    }
  }
  std::string debian = trim(read_file("/etc/debian_version"));
  if (!debian.empty()) facts["debian_version"] = debian;
  facts["kernel"] = trim(read_file("/proc/sys/kernel/osrelease"));
  return facts;
}

}  // namespace sig::bench
