#include "protocol/static_path.hpp"

#include "protocol/http_target.hpp"

#include <array>
#include <utility>

namespace sig::protocol {

std::optional<std::string> static_file_for(std::string_view target) {
  target = target.substr(0, target.find_first_of("?#"));
  if (target.empty() || target.front() != '/') return std::nullopt;
  auto decoded = percent_decode(target);
  if (!decoded) return std::nullopt;
  // Decoded or not, these never name a file under the web root.
  if (decoded->find_first_of(std::string_view("\0\\", 2)) != std::string::npos) return std::nullopt;
  std::string path = decoded->substr(1);
  if (path.empty() || path.back() == '/') path += "index.html";  // a folder: its index page
  std::size_t start = 0;
  while (start <= path.size()) {
    std::size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    std::string_view segment(path.data() + start, end - start);
    if (segment.empty() || segment == "." || segment == "..") return std::nullopt;
    start = end + 1;
  }
  return path;
}

std::string_view media_type_for(std::string_view file) {
  static constexpr std::array<std::pair<std::string_view, std::string_view>, 12> types{{
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".mjs", "text/javascript; charset=utf-8"},
      {".ts", "text/plain; charset=utf-8"},  // .d.ts declarations, read as text
      {".css", "text/css; charset=utf-8"},
      {".json", "application/json"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".txt", "text/plain; charset=utf-8"},
      {".map", "application/json"},
      {".webmanifest", "application/manifest+json"},
  }};
  for (auto const& [extension, type] : types)
    if (file.size() > extension.size() && file.substr(file.size() - extension.size()) == extension) return type;
  return "application/octet-stream";
}

}  // namespace sig::protocol
