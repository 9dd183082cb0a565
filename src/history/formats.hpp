#pragma once
// Output formats of the history tools: a table for people, jsonl for scripts
// (the format the admin API streams too), a Mermaid sequence diagram, and one
// self-contained HTML page drawing the timeline. Writers stream: memory stays
// flat however long the history, except Mermaid, whose participants must be
// declared before the messages.
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "domain/room_state.hpp"

namespace sig::history {

enum class format { table, jsonl, mermaid, html };

// nullopt and `error` naming the bad value for anything but the four names.
std::optional<format> parse_format(std::string_view text, std::string* error);

struct format_options {
  std::string room;
  bool redact = false;   // mask IP addresses in payloads and meta
  std::string as_peer;   // non-empty: show what this peer was sent
  std::string subtitle;  // html: a line under the title (what was read, when)
  bool flush_each = false;  // table, jsonl: flush after every event (following live events)
};

// One line of the jsonl format (without the newline). Documented in
// docs/debugging.md; fields are only ever added.
std::string jsonl_record(std::string_view room, domain::event const& e, bool redact);
std::string unreadable_record(std::uint64_t seq, std::size_t size);

class history_writer {
 public:
  virtual ~history_writer() = default;
  // `before`: the room's state just before the event (the fold up to it).
  virtual void event(domain::event const& e, domain::room_state const& before) = 0;
  // A stored event this version cannot decode (newer schema, corrupt bytes).
  virtual void unreadable(std::uint64_t seq, std::size_t size) = 0;
  // Writes what is still buffered and closes the document.
  virtual void finish() = 0;
};

std::unique_ptr<history_writer> make_writer(format f, std::ostream& out, format_options options);

}  // namespace sig::history
