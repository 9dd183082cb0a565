#pragma once
// Message ids that JetStream deduplicates (within the stream's duplicate
// window, 120 s by default) and that are derived from what a client sent,
// so that sending a request again stores it at most once.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sig::domain {

// A signal that carried an `id`. A signal answered `unavailable` after its
// append went unacknowledged may still be stored (a stream leader that lost
// its quorum commits it once quorum returns; an acknowledgement lost in a
// failover): sent again with the same `id` and content by the same member
// (the same join, on this connection or after a resume), it is stored once
// and acknowledged with the first copy's seq. The id folds in the content,
// so a client that reuses an `id` for another signal is not deduplicated.
//
// The member is its join's stream sequence, which no other join anywhere in
// the stream has, so the room and the peer need not be spelled out: the id
// is `s.<join seq>.<22 characters>`, about 30 bytes, where spelling them out
// took about 100 of the 540 that nats-server stores per signal (and its
// file store's stalls come with the bytes stored: docs/benchmarks.md).
std::string signal_message_id(std::uint64_t join_seq, std::string_view request_id,
                              std::optional<std::string> const& to, std::string_view data_json);

// A room's snapshot at stream position `seq`: every instance that writes
// the snapshot of that position writes the same id, so the stream keeps one.
std::string snapshot_message_id(std::string_view room_token, std::uint64_t seq);

}  // namespace sig::domain
