#include "server/static_files.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "protocol/static_path.hpp"

namespace sig::server {

namespace fs = std::filesystem;

namespace {

std::string content_etag(std::string const& body) {
  std::uint64_t hash = 1469598103934665603ULL;  // FNV-1a
  for (unsigned char c : body) hash = (hash ^ c) * 1099511628211ULL;
  return fmt::format("\"{:016x}-{:x}\"", hash, body.size());
}

}  // namespace

std::optional<static_files> static_files::load(std::string const& root, spdlog::logger& log, std::size_t max_files,
                                               std::size_t max_bytes) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    log.error("web root {} is not a readable directory", root);
    return std::nullopt;
  }
  static_files out;
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    auto const& entry = *it;
    if (entry.is_symlink(ec)) {
      log.warn("web root: skipping symbolic link {}", entry.path().string());
      if (entry.is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (!entry.is_regular_file(ec)) continue;
    std::string relative = fs::relative(entry.path(), root, ec).generic_string();
    // Only what a request can name is kept (no dot-segments, no backslashes).
    if (ec || protocol::static_file_for("/" + relative) != relative) continue;
    if (out.files_.size() >= max_files || out.bytes_ + entry.file_size(ec) > max_bytes) {
      log.error("web root {} holds more than {} files or {} bytes", root, max_files, max_bytes);
      return std::nullopt;
    }
    std::ifstream in(entry.path(), std::ios::binary);
    std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) {
      log.error("web root: cannot read {}", entry.path().string());
      return std::nullopt;
    }
    out.bytes_ += body.size();
    file f{std::move(body), std::string(protocol::media_type_for(relative)), {}};
    f.etag = content_etag(f.body);
    out.files_.emplace(std::move(relative), std::move(f));
  }
  if (ec) {
    log.error("web root {}: {}", root, ec.message());
    return std::nullopt;
  }
  return out;
}

static_files::file const* static_files::find(std::string const& relative) const {
  auto it = files_.find(relative);
  return it == files_.end() ? nullptr : &it->second;
}

}  // namespace sig::server
