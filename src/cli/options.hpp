#pragma once
// Command-line options that also read SIGSTREAM_* environment variables.
// Precedence: flag, then environment, then the documented default. Every
// option is declared once, with its help text, and --help is generated.
#include <chrono>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sig::cli {

class options {
 public:
  // `program` names the executable in usage and error lines: the product is
  // `sigstream`, the load tool `sigstream-bench` (whose main command has no
  // name of its own: `command` may be empty).
  options(std::string command, std::string summary, std::string program = "sigstream");

  void add_string(std::string name, std::string* target, std::string help);
  void add_int(std::string name, std::int64_t* target, std::string help);
  // "30s", "10m", "24h", "7d", "250ms" or a bare number of seconds.
  void add_duration(std::string name, std::chrono::milliseconds* target, std::string help);
  // "1048576", "64KiB", "1MiB", "1GiB"; -1 for no limit.
  void add_size(std::string name, std::int64_t* target, std::string help);
  void add_flag(std::string name, bool* target, std::string help);
  // Options added after this call are listed under `title` in --help
  // (groups in the order first named; naming one again adds to it). A
  // hidden group is listed only by --help-all: flags for tests.
  void group(std::string title, bool hidden = false);
  // These options are not read from the environment: per-run choices (a
  // query's range, a format) that an exported variable must not change silently.
  void command_line_only(std::initializer_list<std::string_view> names);
  // Arguments that are not options, in order.
  void add_positional(std::string name, std::string* target, std::string help, bool required);

  // Returns false after printing an error (or true with help_requested()).
  bool parse(int argc, char** argv);
  // For a command's entry: parses, and when the command is over already
  // returns its exit code (0 after printing --help, 2 after a usage error).
  std::optional<int> parse_or_exit(int argc, char** argv);
  bool help_requested() const { return help_; }
  std::string help_text() const;

  static std::string env_name(std::string_view option);  // listen-address -> SIGSTREAM_LISTEN_ADDRESS
  static std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);
  static std::optional<std::int64_t> parse_size(std::string_view text);

 private:
  struct option {
    std::string name, help, default_text, kind;
    std::function<bool(std::string_view)> set;
    bool positional = false, required = false;
    bool is_flag = false;
    bool from_env = true;
    std::size_t group = 0;
  };
  struct option_group {
    std::string title;
    bool hidden = false;
  };
  std::vector<option_group> groups_{{"Options", false}};
  std::size_t current_group_ = 0;
  bool help_all_ = false;
  std::string command_, summary_, program_;
  std::string invocation() const;  // "sigstream history", "sigstream-bench"
  void push(option o);  // in the current group

  std::vector<option> options_;
  bool help_ = false;
};

}  // namespace sig::cli
