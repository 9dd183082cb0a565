#pragma once
// Room names are arbitrary UTF-8 (1..200 bytes). They never reach a NATS
// subject as they are: a name becomes a base64url token, whose alphabet
// (A-Z a-z 0-9 - _) holds no subject separator, wildcard or whitespace, and
// which is reversible, so two names never share a token.
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace sig::domain {

inline constexpr std::size_t max_room_name_bytes = 200;

bool is_valid_utf8(std::string_view text);

// Empty, longer than max_room_name_bytes, or not UTF-8: not a room name.
bool is_valid_room_name(std::string_view name);

std::string base64url(std::string_view bytes);  // RFC 4648 section 5, no padding
// The inverse; nullopt for any other text (padding, stray bits, other characters).
std::optional<std::string> base64url_decode(std::string_view text);
// Keys of the rooms an instance follows, in the holdings bucket, begin with
// this: written by the instance, read by the survivors that expire it.
std::string holdings_key_prefix(std::string_view instance_id);
std::string room_token(std::string_view name);  // base64url of the name
std::optional<std::string> room_name_from_token(std::string_view token);

// Subjects of one room in the event log, under a configurable prefix
// (itself checked at start-up to be a plain dotted subject). Every event of
// a room goes to ONE subject: the stream's per-subject "previous sequence"
// then proves that a room's live feed has no gap, which two subjects (one
// for membership, one for signals) cannot prove across the pair.
struct room_subjects {
  std::string events;  // <prefix>.room.<token>.e : joins, leaves and signals
  // <prefix>.room.<token>.s : the newest membership snapshot (a rollup), so
  // that rebuilding a room reads a bounded number of events.
  std::string snapshot;
  std::string all;     // <prefix>.room.<token>.> : room-level filter
  std::string live;    // <prefix>.live.<token>.e : the stream's republished copy
};

room_subjects subjects_for(std::string_view prefix, std::string_view room_name);
room_subjects subjects_for_token(std::string_view prefix, std::string_view token);

// True for a prefix of dot-separated tokens of [A-Za-z0-9_-].
bool is_valid_subject_prefix(std::string_view prefix);

}  // namespace sig::domain
