#include "cli/options.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <iostream>

namespace sig::cli {

namespace {

std::string format_duration(std::chrono::milliseconds d) {
  auto ms = d.count();
  if (ms == 0) return "0";
  if (ms % 86'400'000 == 0) return fmt::format("{}d", ms / 86'400'000);
  if (ms % 3'600'000 == 0) return fmt::format("{}h", ms / 3'600'000);
  if (ms % 60'000 == 0) return fmt::format("{}m", ms / 60'000);
  if (ms % 1000 == 0) return fmt::format("{}s", ms / 1000);
  return fmt::format("{}ms", ms);
}

std::string format_size(std::int64_t n) {
  if (n < 0) return "-1 (no limit)";
  if (n != 0 && n % (1LL << 30) == 0) return fmt::format("{}GiB", n >> 30);
  if (n != 0 && n % (1LL << 20) == 0) return fmt::format("{}MiB", n >> 20);
  if (n != 0 && n % (1LL << 10) == 0) return fmt::format("{}KiB", n >> 10);
  return std::to_string(n);
}

std::optional<std::int64_t> parse_int(std::string_view text) {
  if (text.empty()) return std::nullopt;
  std::int64_t value = 0;
  bool negative = text.front() == '-';
  if (negative) text.remove_prefix(1);
  if (text.empty()) return std::nullopt;
  for (char c : text) {
    if (c < '0' || c > '9' || value > (INT64_MAX - 9) / 10) return std::nullopt;
    value = value * 10 + (c - '0');
  }
  return negative ? -value : value;
}

}  // namespace

options::options(std::string command, std::string summary, std::string program)
    : command_(std::move(command)), summary_(std::move(summary)), program_(std::move(program)) {}

std::string options::invocation() const { return command_.empty() ? program_ : program_ + " " + command_; }

std::string options::env_name(std::string_view option) {
  std::string out = "SIGSTREAM_";
  for (char c : option) out += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::optional<std::chrono::milliseconds> options::parse_duration(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  auto number = parse_int(text.substr(0, digits));
  if (!number) return std::nullopt;
  std::string_view unit = text.substr(digits);
  std::int64_t scale = 0;
  if (unit.empty() || unit == "s") scale = 1000;
  else if (unit == "ms") scale = 1;
  else if (unit == "m") scale = 60'000;
  else if (unit == "h") scale = 3'600'000;
  else if (unit == "d") scale = 86'400'000;
  else return std::nullopt;
  return std::chrono::milliseconds(*number * scale);
}

std::optional<std::int64_t> options::parse_size(std::string_view text) {
  if (text == "-1") return -1;
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  auto number = parse_int(text.substr(0, digits));
  if (!number) return std::nullopt;
  std::string_view unit = text.substr(digits);
  if (unit.empty() || unit == "B") return *number;
  if (unit == "KiB" || unit == "K") return *number << 10;
  if (unit == "MiB" || unit == "M") return *number << 20;
  if (unit == "GiB" || unit == "G") return *number << 30;
  return std::nullopt;
}

void options::push(option o) {
  o.group = current_group_;
  options_.push_back(std::move(o));
}

void options::add_string(std::string name, std::string* target, std::string help) {
  push({std::move(name), std::move(help), target->empty() ? "(empty)" : *target, "TEXT",
                      [target](std::string_view v) { *target = std::string(v); return true; }});
}

void options::add_int(std::string name, std::int64_t* target, std::string help) {
  push({std::move(name), std::move(help), std::to_string(*target), "N", [target](std::string_view v) {
                        auto n = parse_int(v);
                        if (n) *target = *n;
                        return n.has_value();
                      }});
}

void options::add_duration(std::string name, std::chrono::milliseconds* target, std::string help) {
  push({std::move(name), std::move(help), format_duration(*target), "DURATION",
                      [target](std::string_view v) {
                        auto d = parse_duration(v);
                        if (d) *target = *d;
                        return d.has_value();
                      }});
}

void options::add_size(std::string name, std::int64_t* target, std::string help) {
  push({std::move(name), std::move(help), format_size(*target), "SIZE", [target](std::string_view v) {
                        auto n = parse_size(v);
                        if (n) *target = *n;
                        return n.has_value();
                      }});
}

void options::add_flag(std::string name, bool* target, std::string help) {
  option o{std::move(name), std::move(help), *target ? "on" : "off", "", [target](std::string_view v) {
             if (v == "1" || v == "true" || v == "yes" || v == "on") *target = true;
             else if (v == "0" || v == "false" || v == "no" || v == "off") *target = false;
             else return false;
             return true;
           }};
  o.is_flag = true;
  push(std::move(o));
}

void options::add_positional(std::string name, std::string* target, std::string help, bool required) {
  option o{std::move(name), std::move(help), "", "", [target](std::string_view v) { *target = std::string(v); return true; }};
  o.positional = true;
  o.required = required;
  push(std::move(o));
}

void options::command_line_only(std::initializer_list<std::string_view> names) {
  for (auto name : names)
    for (auto& o : options_)
      if (o.name == name) o.from_env = false;
}

bool options::parse(int argc, char** argv) {
  auto fail = [&](std::string const& message) {
    std::cerr << invocation() << ": " << message << "\n(see '" << invocation() << " --help')\n";
    return false;
  };
  // Environment first; flags override it.
  for (auto& o : options_) {
    if (o.positional || !o.from_env) continue;
    std::string env = env_name(o.name);
    if (char const* value = std::getenv(env.c_str()); value != nullptr && *value != '\0')
      if (!o.set(value)) return fail(fmt::format("{}='{}' is not a valid {}", env, value, o.kind.empty() ? "flag" : o.kind));
  }
  std::vector<option*> positionals;
  for (auto& o : options_)
    if (o.positional) positionals.push_back(&o);
  std::size_t next_positional = 0;
  for (int i = 0; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h" || arg == "--help-all") {
      help_ = true;
      help_all_ = arg == "--help-all";
      return true;
    }
    if (arg.rfind("--", 0) == 0) {
      std::string_view name = arg.substr(2);
      std::optional<std::string_view> value;
      if (auto eq = name.find('='); eq != std::string_view::npos) {
        value = name.substr(eq + 1);
        name = name.substr(0, eq);
      }
      auto it = std::find_if(options_.begin(), options_.end(), [&](auto const& o) { return !o.positional && o.name == name; });
      if (it == options_.end()) return fail(fmt::format("unknown option --{}", name));
      if (!value) {
        if (it->is_flag) value = "true";
        else if (i + 1 < argc) value = argv[++i];
        else return fail(fmt::format("--{} needs a value", name));
      }
      if (!it->set(*value)) return fail(fmt::format("--{} '{}' is not a valid {}", name, *value, it->kind.empty() ? "flag" : it->kind));
      continue;
    }
    if (next_positional >= positionals.size()) return fail(fmt::format("unexpected argument '{}'", arg));
    positionals[next_positional++]->set(arg);
  }
  for (std::size_t i = next_positional; i < positionals.size(); ++i)
    if (positionals[i]->required) return fail(fmt::format("missing {}", positionals[i]->name));
  return true;
}

std::optional<int> options::parse_or_exit(int argc, char** argv) {
  if (!parse(argc, argv)) return 2;
  if (!help_requested()) return std::nullopt;
  std::cout << help_text();
  return 0;
}

void options::group(std::string title, bool hidden) {
  auto it = std::find_if(groups_.begin(), groups_.end(), [&](auto const& g) { return g.title == title; });
  if (it == groups_.end()) it = groups_.insert(groups_.end(), option_group{std::move(title), hidden});
  current_group_ = static_cast<std::size_t>(it - groups_.begin());
}

std::string options::help_text() const {
  std::string out = fmt::format("Usage: {}", invocation());
  for (auto const& o : options_)
    if (o.positional) out += o.required ? fmt::format(" {}", o.name) : fmt::format(" [{}]", o.name);
  out += " [options]\n\n" + summary_ + "\n";
  bool header = false;
  for (auto const& o : options_) {
    if (!o.positional) continue;
    if (!header) out += "\nArguments:\n";
    header = true;
    out += fmt::format("  {}\n      {}\n", o.name, o.help);
  }
  out += "\nIn brackets: the environment variable that sets an option too.\n";
  bool any_hidden = false;
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    if (groups_[g].hidden && !help_all_) {
      any_hidden = true;
      continue;
    }
    bool titled = false;
    for (auto const& o : options_) {
      if (o.positional || o.group != g) continue;
      if (!titled) out += fmt::format("\n{}:\n", groups_[g].title);
      titled = true;
      std::string env = o.from_env ? fmt::format("   [{}]", env_name(o.name)) : "";
      out += fmt::format("  --{}{}{}\n      {}\n      default: {}\n", o.name, o.kind.empty() ? "" : " " + o.kind, env,
                         o.help, o.default_text);
    }
  }
  out += "\nHelp:\n  --help\n      Show this help.\n";
  if (any_hidden) out += "  --help-all\n      Show this help with the options meant for tests too.\n";
  return out;
}

}  // namespace sig::cli
