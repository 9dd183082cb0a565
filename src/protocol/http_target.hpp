#pragma once
// Pieces of HTTP request targets, as pure functions: percent-decoding and
// query strings (RFC 3986 section 2.1, and the form encoding browsers use).
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sig::protocol {

// nullopt for a '%' not followed by two hex digits. With `plus_is_space`
// (query strings), '+' decodes to a space.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space = false);

// "a=1&b=x%20y&c" -> {{"a","1"},{"b","x y"},{"c",""}}, in order. Empty
// pieces ("a=1&&b=2") are skipped; nullopt for a bad escape.
std::optional<std::vector<std::pair<std::string, std::string>>> parse_query(std::string_view query);

}  // namespace sig::protocol
