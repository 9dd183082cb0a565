#pragma once
// Which address a client connects from, behind trusted proxies. HAProxy
// (option forwardfor) appends the address it saw to X-Forwarded-For; a
// client can put anything to the left of it. So the list is read from the
// right, skipping hops that are trusted proxies, and the first untrusted
// address is the client. A connection from an untrusted peer is its own
// client, whatever headers it sends.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sig::admission {

// An IPv4 or IPv6 network (address/prefix). IPv4 is held as IPv4-mapped
// IPv6, so one comparison serves both.
struct network {
  std::array<std::uint8_t, 16> address{};
  int prefix_bits = 128;
};

// "a, b ,,c" -> {"a", "b", "c"}: a comma-separated setting's items, trimmed
// of spaces and tabs, empty ones dropped. Views into `text`.
std::vector<std::string_view> comma_list(std::string_view text);

// "127.0.0.0/8, ::1, 10.1.2.3": a bare address is a /32 (/128). Empty
// text: no networks. Nullopt (and *error set) on anything malformed.
std::optional<std::vector<network>> parse_networks(std::string_view text, std::string* error = nullptr);

// The canonical text of an address ("::ffff:10.0.0.1" -> "10.0.0.1"), or
// nullopt if `text` is not an IP address.
std::optional<std::string> canonical_address(std::string_view text);

bool is_trusted(std::vector<network> const& trusted, std::string_view address);

// The client's address: `peer` (the TCP peer) unless it is trusted, then the
// rightmost untrusted X-Forwarded-For entry. A malformed entry stops the
// walk at the hop that added it.
std::string client_address(std::string_view peer, std::string_view forwarded_for, std::vector<network> const& trusted);

}  // namespace sig::admission
