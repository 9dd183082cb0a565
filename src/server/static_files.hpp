#pragma once
// The web root (client library, demo page), read once at start-up and served
// from memory: no file I/O on an io thread, and nothing outside the root can
// be reached because only what was read can be served.
#include <cstddef>
#include <map>
#include <memory>
#include <optional>
#include <string>

namespace spdlog { class logger; }

namespace sig::server {

class static_files {
 public:
  struct file {
    std::string body;
    std::string media_type;
    std::string etag;  // quoted, from the content
  };

  // Regular files under `root`, recursively; symbolic links are skipped.
  // Stops with an error past max_files or max_bytes. nullopt (after logging
  // why) if the root cannot be read.
  static std::optional<static_files> load(std::string const& root, spdlog::logger& log,
                                          std::size_t max_files = 1000, std::size_t max_bytes = 32 << 20);

  // `relative` as protocol::static_file_for gives it.
  file const* find(std::string const& relative) const;
  std::size_t size() const { return files_.size(); }
  std::size_t bytes() const { return bytes_; }

 private:
  std::map<std::string, file> files_;
  std::size_t bytes_ = 0;
};

}  // namespace sig::server
