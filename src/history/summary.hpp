#pragma once
// One-line, human-readable summaries of signal payloads for the history
// tools. Pure: JSON text in, text out.
#include <string>
#include <string_view>

namespace sig::history {

// What a signal carried, in one line:
//  - an SDP offer or answer: "offer: audio(opus,G722) video(VP8,H264) application(webrtc-datachannel)";
//    media sections in order, each with its codec names (duplicates removed), and
//    "video(rejected)" for a section with port 0; a section naming no codec is
//    just "audio", an SDP without sections "offer: no media"; the type may also be
//    "pranswer", and {"type":"rollback"} is "rollback";
//  - an ICE candidate: "candidate: host udp" / "candidate: srflx udp" / "candidate: relay tcp"
//    (type and transport lowercased), or "end-of-candidates" for an empty or null candidate;
//  - anything else, including invalid JSON, arrays, strings and candidates
//    without "typ": "N bytes", N being the size of data_json.
// Recognised shapes (what common clients send): {"description":{"type","sdp"}},
// {"sdp":{"type","sdp"}}, {"type":"offer"|"answer","sdp":"..."}; {"candidate":{"candidate":"..."}},
// {"candidate":"candidate:..."}, {"ice":{...}}. Never throws.
std::string summarize_signal(std::string_view data_json);

}  // namespace sig::history
