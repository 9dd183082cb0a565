#pragma once
// Request targets of the static files an instance serves (the client
// library, the demo page), as pure functions: which file a target names, and
// its media type. No file system here; the HTTP adapter serves from memory.
#include <optional>
#include <string>
#include <string_view>

namespace sig::protocol {

// The file a request target names, relative to the web root and without a
// leading slash ("/" is "index.html", "/admin/" is "admin/index.html"; a query
// string is ignored). nullopt for
// anything that could leave the web root or is not a plain path: "..",
// ".", empty segments past the first, backslashes, NUL, bad percent-escapes.
std::optional<std::string> static_file_for(std::string_view target);

// Content-Type by extension; application/octet-stream when unknown.
std::string_view media_type_for(std::string_view file);

}  // namespace sig::protocol
