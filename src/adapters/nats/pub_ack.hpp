#pragma once
// JetStream's answer to a publish, read from its JSON by hand: it is the
// one message every append waits for, and the full JSON parser of nats.c
// runs only on its own delivery threads. Pure.
//
// What nats-server 2.9.10 sends (note the space after the first comma):
//   {"stream":"S", "seq":42}
//   {"stream":"S", "seq":42,"duplicate": true}
//   {"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 41"},"stream":"S","seq":0}
#include <cstdint>
#include <string>
#include <string_view>

namespace sig::nats {

struct pub_ack {
  bool ok = false;
  std::uint64_t seq = 0;
  bool duplicate = false;
  std::string stream;       // the stream that stored it
  int error_code = 0;       // JetStream's err_code, when not ok
  std::string error;        // its description, or why the answer was unreadable
};

pub_ack parse_pub_ack(std::string_view json);

}  // namespace sig::nats
