// `sigstream token`: mints a join token with the instances' keys
// (SIGSTREAM_AUTH_KEYS), for development and tests. In production the
// application's backend mints them (docs/security.md shows how).
#include <chrono>
#include <iostream>

#include "auth/join_token.hpp"
#include "cli/commands.hpp"
#include "cli/options.hpp"
#include "domain/room_name.hpp"
#include "protocol/json.hpp"

namespace sig::cli {

int token_command(int argc, char** argv) {
  std::string keys_text, room, meta = "{}", rights;
  std::chrono::milliseconds ttl{3'600'000};
  options opts("token",
               "Mint a join token (a JWT signed with HS256 by the first of --auth-keys) that admits one room\n"
               "(or every room starting with a prefix, given as PREFIX*), as the peer --meta describes, until\n"
               "--ttl from now. The token is printed alone on the last line.");
  opts.add_string("auth-keys", &keys_text, "KID:SECRET,... as the instances have them; the first key signs.");
  opts.add_string("room", &room, "Room name, or a prefix ending in '*'.");
  opts.add_duration("ttl", &ttl, "How long the token is valid.");
  opts.add_string("meta", &meta, "The peer's meta, a JSON object (the client cannot override it).");
  opts.add_string("rights", &rights,
                  "Optional JSON object {\"signal\": bool, \"broadcast\": bool} (both default to true).");
  opts.command_line_only({"room", "ttl", "meta", "rights"});
  if (auto done = opts.parse_or_exit(argc, argv)) return *done;
  std::string error;
  auto keys = auth::parse_keys(keys_text, &error);
  if (keys_text.empty() || !keys) {
    std::cerr << "sigstream token: --auth-keys (SIGSTREAM_AUTH_KEYS): " << (keys_text.empty() ? "not set" : error) << "\n";
    return 2;
  }
  std::string_view exact = room;
  if (!exact.empty() && exact.back() == '*') exact.remove_suffix(1);
  if (room.empty() || (room.back() != '*' && !domain::is_valid_room_name(room)) || exact.size() > domain::max_room_name_bytes) {
    std::cerr << "sigstream token: --room must be a room name (1 to 200 bytes of UTF-8) or a prefix ending in '*'\n";
    return 2;
  }
  auto is_object = [](std::string const& text) {
    auto doc = protocol::json::parse(text, 64);
    return doc.ok() && doc.root.kind == protocol::json::kind::object;
  };
  if (!is_object(meta) || (!rights.empty() && !is_object(rights))) {
    std::cerr << "sigstream token: --meta and --rights must be JSON objects\n";
    return 2;
  }
  if (ttl.count() < 1000) {
    std::cerr << "sigstream token: --ttl must be at least 1s\n";
    return 2;
  }
  auto expires = std::chrono::duration_cast<std::chrono::seconds>(
                     (std::chrono::system_clock::now() + ttl).time_since_epoch()).count();
  std::cerr << "join token for room " << room << " signed with key '" << keys->front().id << "', valid for "
            << ttl.count() / 1000 << " s\n";
  std::cout << auth::mint_join_token(keys->front(), room, expires, meta, rights) << "\n";
  return 0;
}

}  // namespace sig::cli
