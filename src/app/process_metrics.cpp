#include "app/process_metrics.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fmt/format.h>

#include <fstream>
#include <sstream>
#include <vector>

namespace sig::app {

namespace {

// Fields of /proc/self/stat after the command name (which may hold spaces
// and parentheses, so the split starts after its last ')'). Field 3 of
// proc(5), the state, is index 0.
std::vector<std::string> stat_fields() {
  std::ifstream in("/proc/self/stat");
  std::string line;
  if (!std::getline(in, line)) return {};
  auto close = line.rfind(')');
  if (close == std::string::npos) return {};
  std::istringstream rest(line.substr(close + 1));
  std::vector<std::string> fields;
  for (std::string f; rest >> f;) fields.push_back(f);
  return fields;
}

double boot_time_seconds() {
  std::ifstream in("/proc/stat");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("btime ", 0) == 0) return std::stod(line.substr(6));
  return 0;
}

int open_fds() {
  int n = 0;
  if (DIR* dir = opendir("/proc/self/fd")) {
    while (dirent* entry = readdir(dir))
      if (entry->d_name[0] != '.') ++n;
    closedir(dir);
    --n;  // the one opendir holds
  }
  return n;
}

}  // namespace

void append_process_metrics(std::string& out) {
  auto f = stat_fields();
  // utime 14, stime 15, starttime 22, vsize 23, rss 24 in proc(5): indexes 11, 12, 19, 20, 21 here.
  if (f.size() < 22) return;
  double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  double cpu = (std::stod(f[11]) + std::stod(f[12])) / ticks;
  double start = boot_time_seconds() + std::stod(f[19]) / ticks;
  double virtual_bytes = std::stod(f[20]);
  double resident_bytes = std::stod(f[21]) * static_cast<double>(sysconf(_SC_PAGESIZE));
  rlimit limit{};
  double max_fds = getrlimit(RLIMIT_NOFILE, &limit) == 0 ? static_cast<double>(limit.rlim_cur) : 0;
  auto put = [&out](char const* name, char const* help, char const* type, double value) {
    fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, value);
  };
  put("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", "counter", cpu);
  put("process_resident_memory_bytes", "Resident memory size in bytes.", "gauge", resident_bytes);
  put("process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge", virtual_bytes);
  put("process_open_fds", "Number of open file descriptors.", "gauge", open_fds());
  put("process_max_fds", "Maximum number of open file descriptors.", "gauge", max_fds);
  put("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", "gauge", start);
}

}  // namespace sig::app
