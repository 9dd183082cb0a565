#include "server/websocket_codec.hpp"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cstring>

#include "domain/room_name.hpp"

namespace sig::server {

namespace {

constexpr std::string_view handshake_guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
constexpr std::size_t max_control_payload = 125;

bool is_base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

}  // namespace

std::string websocket_accept_key(std::string_view client_key) {
  std::string keyed(client_key);
  keyed += handshake_guid;
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<unsigned char const*>(keyed.data()), keyed.size(), digest);
  unsigned char encoded[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
  int size = EVP_EncodeBlock(encoded, digest, SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<char const*>(encoded), static_cast<std::size_t>(size));
}

bool valid_websocket_key(std::string_view client_key) {
  // 16 bytes in base64: 22 characters and "==".
  if (client_key.size() != 24 || client_key.substr(22) != "==") return false;
  return std::all_of(client_key.begin(), client_key.begin() + 22, is_base64_char);
}

bool valid_close_code(std::uint16_t code) {
  if (code < 1000) return false;
  if (code == 1004 || code == 1005 || code == 1006 || code == 1015) return false;
  if (code >= 1016 && code <= 2999) return false;
  return code <= 4999;
}

frame_header server_frame_header(opcode op, std::size_t payload_size) {
  frame_header header;
  header.bytes[0] = static_cast<unsigned char>(0x80 | static_cast<unsigned char>(op));
  if (payload_size < 126) {
    header.bytes[1] = static_cast<unsigned char>(payload_size);
    header.size = 2;
  } else if (payload_size <= 0xFFFF) {
    header.bytes[1] = 126;
    header.bytes[2] = static_cast<unsigned char>(payload_size >> 8);
    header.bytes[3] = static_cast<unsigned char>(payload_size);
    header.size = 4;
  } else {
    header.bytes[1] = 127;
    auto size = static_cast<std::uint64_t>(payload_size);
    for (int i = 0; i < 8; ++i) header.bytes[2 + i] = static_cast<unsigned char>(size >> (56 - 8 * i));
    header.size = 10;
  }
  return header;
}

std::string server_close_frame(close_reason const& reason) {
  // The reason is cut to fit a control frame, at a character boundary.
  if (reason.code == close_code::no_status) {  // an empty close frame: no code to give
    auto header = server_frame_header(opcode::close, 0);
    return std::string(reinterpret_cast<char const*>(header.bytes.data()), header.size);
  }
  std::string_view text = reason.reason;
  if (text.size() > max_control_payload - 2) {
    text = text.substr(0, max_control_payload - 2);
    while (!text.empty() && !domain::is_valid_utf8(text)) text.remove_suffix(1);
  }
  auto header = server_frame_header(opcode::close, 2 + text.size());
  std::string frame(reinterpret_cast<char const*>(header.bytes.data()), header.size);
  frame += static_cast<char>(reason.code >> 8);
  frame += static_cast<char>(reason.code & 0xFF);
  frame += text;
  return frame;
}

frame_reader::frame_reader(std::size_t max_message_bytes, std::size_t give_up_bytes)
    : max_message_bytes_(max_message_bytes), give_up_bytes_(std::max(give_up_bytes, max_message_bytes)) {}

frame_reader::step frame_reader::next(char* data, std::size_t size) {
  using namespace read_event;
  wanted_ = 0;
  if (failed_) return {0, violation{close_code::protocol_error, "frames after a protocol violation"}};
  if (assembled_delivered_) {
    // The previous call handed out a view of the assembled message.
    assembled_.clear();
    if (assembled_.capacity() > 8192) assembled_.shrink_to_fit();
    assembled_delivered_ = false;
  }
  if (dropping_ && drop_left_in_frame_ > 0) return drop(size);

  auto fail = [this](std::uint16_t code, std::string_view why) {
    failed_ = true;
    return step{0, violation{code, why}};
  };
  auto const* bytes = reinterpret_cast<unsigned char const*>(data);
  if (size < 2) return {0, need_more{}};
  bool final_frame = (bytes[0] & 0x80) != 0;
  if ((bytes[0] & 0x70) != 0) return fail(close_code::protocol_error, "reserved bits set (no extension agreed)");
  auto op = static_cast<std::uint8_t>(bytes[0] & 0x0F);
  bool masked = (bytes[1] & 0x80) != 0;
  if (!masked) return fail(close_code::protocol_error, "client frame not masked");
  std::uint64_t length = bytes[1] & 0x7F;
  std::size_t header_size = 2;
  if (length == 126) {
    if (size < 4) return {0, need_more{}};
    length = (std::uint64_t{bytes[2]} << 8) | bytes[3];
    header_size = 4;
    if (length < 126) return fail(close_code::protocol_error, "payload length not in its shortest form");
  } else if (length == 127) {
    if (size < 10) return {0, need_more{}};
    length = 0;
    for (int i = 0; i < 8; ++i) length = (length << 8) | bytes[2 + i];
    header_size = 10;
    if (length >> 63) return fail(close_code::protocol_error, "payload length over 2^63");
    if (length <= 0xFFFF) return fail(close_code::protocol_error, "payload length not in its shortest form");
  }
  std::size_t const mask_at = header_size;
  header_size += 4;

  bool control = op >= 8;
  if (control) {
    if (op != static_cast<std::uint8_t>(opcode::close) && op != static_cast<std::uint8_t>(opcode::ping) &&
        op != static_cast<std::uint8_t>(opcode::pong))
      return fail(close_code::protocol_error, "unknown control opcode");
    if (!final_frame) return fail(close_code::protocol_error, "fragmented control frame");
    if (length > max_control_payload) return fail(close_code::protocol_error, "control frame over 125 bytes");
  } else if (op == static_cast<std::uint8_t>(opcode::continuation)) {
    if (!in_message_ && !dropping_) return fail(close_code::protocol_error, "continuation frame outside a message");
  } else if (op == static_cast<std::uint8_t>(opcode::text) || op == static_cast<std::uint8_t>(opcode::binary)) {
    if (in_message_ || dropping_) return fail(close_code::protocol_error, "new message before the last one ended");
  } else {
    return fail(close_code::protocol_error, "unknown data opcode");
  }

  if (!control) {
    std::size_t so_far = dropping_ ? dropped_bytes_ : assembled_.size();
    if (dropping_ || length > max_message_bytes_ - std::min(so_far, max_message_bytes_)) {
      // Over the limit: from here on the message is counted and dropped,
      // never held.
      if (size < header_size) return {0, need_more{}};
      if (!dropping_) {
        dropping_ = true;
        drop_reported_ = false;
        dropped_bytes_ = assembled_.size();
        assembled_.clear();
        in_message_ = false;
      }
      drop_frame_final_ = final_frame;
      drop_left_in_frame_ = length;
      auto result = drop(size - header_size);
      result.consumed += header_size;
      return result;
    }
  }

  if (size < header_size + length) {
    wanted_ = header_size + static_cast<std::size_t>(length);
    return {0, need_more{}};
  }
  unsigned char mask[4];
  std::memcpy(mask, bytes + mask_at, 4);
  char* payload = data + header_size;
  auto payload_size = static_cast<std::size_t>(length);
  for (std::size_t i = 0; i < payload_size; ++i) payload[i] = static_cast<char>(payload[i] ^ mask[i & 3]);
  std::string_view view(payload, payload_size);
  std::size_t consumed = header_size + payload_size;

  switch (static_cast<opcode>(op)) {
    case opcode::ping: return {consumed, ping{view}};
    case opcode::pong: return {consumed, pong{}};
    case opcode::close: {
      if (payload_size == 0) return {consumed, close{close_code::no_status, {}}};
      if (payload_size == 1) return fail(close_code::protocol_error, "close frame with a one-byte payload");
      auto code = static_cast<std::uint16_t>((static_cast<unsigned char>(view[0]) << 8) |
                                             static_cast<unsigned char>(view[1]));
      if (!valid_close_code(code)) return fail(close_code::protocol_error, "invalid close code");
      auto reason = view.substr(2);
      if (!domain::is_valid_utf8(reason)) return fail(close_code::bad_payload, "close reason not UTF-8");
      return {consumed, close{code, reason}};
    }
    default: break;
  }
  if (!final_frame) {
    if (!in_message_) {
      in_message_ = true;
      message_binary_ = op == static_cast<std::uint8_t>(opcode::binary);
    }
    assembled_.append(view);
    return {consumed, need_more{}};
  }
  if (in_message_) {
    assembled_.append(view);
    in_message_ = false;
    assembled_delivered_ = true;
    return end_of_message(consumed, assembled_, message_binary_);
  }
  return end_of_message(consumed, view, op == static_cast<std::uint8_t>(opcode::binary));
}

frame_reader::step frame_reader::end_of_message(std::size_t consumed, std::string_view payload, bool binary) {
  if (!binary && !domain::is_valid_utf8(payload)) {
    failed_ = true;
    return {consumed, read_event::violation{close_code::bad_payload, "text message not UTF-8"}};
  }
  return {consumed, read_event::message{binary, payload}};
}

// Drops up to `size` bytes of the current frame of a message over the limit.
frame_reader::step frame_reader::drop(std::size_t size) {
  auto taken = static_cast<std::size_t>(std::min<std::uint64_t>(drop_left_in_frame_, size));
  drop_left_in_frame_ -= taken;
  dropped_bytes_ += taken;
  if (drop_left_in_frame_ == 0 && drop_frame_final_) {
    dropping_ = false;
    if (drop_reported_) return {taken, read_event::need_more{}};
    return {taken, read_event::too_big{dropped_bytes_, true}};
  }
  if (!drop_reported_ && dropped_bytes_ > give_up_bytes_) {
    drop_reported_ = true;
    return {taken, read_event::too_big{dropped_bytes_, false}};
  }
  return {taken, read_event::need_more{}};
}

}  // namespace sig::server
