#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "history/redact.hpp"
#include "history/summary.hpp"
#include "history/time_point.hpp"
#include "protocol/json.hpp"

using namespace sig::history;
namespace json = sig::protocol::json;

namespace {

using strings = std::vector<std::string>;

// SDP lines joined with CRLF as they appear inside a JSON string ("\r\n"
// escaped). The lines hold no quote or backslash, so nothing else needs escaping.
std::string sdp_json(strings const& lines) {
  std::string out;
  for (auto const& line : lines) out += line + "\\r\\n";
  return out;
}

std::string description(std::string_view type, strings const& lines) {
  return R"({"type":")" + std::string(type) + R"(","sdp":")" + sdp_json(lines) + R"("})";
}

std::string bytes(std::string_view text) { return std::to_string(text.size()) + " bytes"; }

// What Chrome 120 sends for a call with a microphone, a camera and a data
// channel (trimmed of a few extmaps and ssrc lines that change nothing here).
strings const chrome_offer = {
    "v=0",
    "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
    "s=-",
    "t=0 0",
    "a=group:BUNDLE 0 1 2",
    "a=extmap-allow-mixed",
    "a=msid-semantic: WMS 7d5e1f2a-4b4c-4a2b-9d2e-2b8a3f6c1d00",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
    "c=IN IP4 0.0.0.0",
    "a=rtcp:9 IN IP4 0.0.0.0",
    "a=ice-ufrag:EsAw",
    "a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y",
    "a=ice-options:trickle",
    "a=fingerprint:sha-256 DA:52:67:C5:2A:2E:91:13:A2:7D:3A:E1:2E:A4:F3:28:90:67:71:0E:B7:6F:7B:"
    "56:79:F4:B2:D1:54:4B:92:7E",
    "a=setup:actpass",
    "a=mid:0",
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
    "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
    "a=sendrecv",
    "a=msid:7d5e1f2a-4b4c-4a2b-9d2e-2b8a3f6c1d00 0b3c4d5e-6f70-4182-93a4-b5c6d7e8f901",
    "a=rtcp-mux",
    "a=rtpmap:111 opus/48000/2",
    "a=rtcp-fb:111 transport-cc",
    "a=fmtp:111 minptime=10;useinbandfec=1",
    "a=rtpmap:63 red/48000/2",
    "a=fmtp:63 111/111",
    "a=rtpmap:9 G722/8000",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:13 CN/8000",
    "a=rtpmap:110 telephone-event/48000",
    "a=rtpmap:126 telephone-event/8000",
    "a=ssrc:3735928559 cname:4TOk42mSjXCkVIa6",
    "m=video 9 UDP/TLS/RTP/SAVPF 96 97 98 99 102 103 104 105 106 107 108",
    "c=IN IP4 0.0.0.0",
    "a=rtcp:9 IN IP4 0.0.0.0",
    "a=ice-ufrag:EsAw",
    "a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y",
    "a=ice-options:trickle",
    "a=fingerprint:sha-256 DA:52:67:C5:2A:2E:91:13:A2:7D:3A:E1:2E:A4:F3:28:90:67:71:0E:B7:6F:7B:"
    "56:79:F4:B2:D1:54:4B:92:7E",
    "a=setup:actpass",
    "a=mid:1",
    "a=extmap:14 urn:ietf:params:rtp-hdrext:toffset",
    "a=sendrecv",
    "a=rtcp-mux",
    "a=rtcp-rsize",
    "a=rtpmap:96 VP8/90000",
    "a=rtcp-fb:96 goog-remb",
    "a=rtcp-fb:96 nack pli",
    "a=rtpmap:97 rtx/90000",
    "a=fmtp:97 apt=96",
    "a=rtpmap:98 VP9/90000",
    "a=fmtp:98 profile-id=0",
    "a=rtpmap:99 rtx/90000",
    "a=fmtp:99 apt=98",
    "a=rtpmap:102 H264/90000",
    "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
    "a=rtpmap:103 rtx/90000",
    "a=fmtp:103 apt=102",
    "a=rtpmap:104 H264/90000",
    "a=fmtp:104 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f",
    "a=rtpmap:105 rtx/90000",
    "a=fmtp:105 apt=104",
    "a=rtpmap:106 red/90000",
    "a=rtpmap:107 rtx/90000",
    "a=fmtp:107 apt=106",
    "a=rtpmap:108 ulpfec/90000",
    "a=ssrc-group:FID 2865519367 1512351413",
    "a=ssrc:2865519367 cname:4TOk42mSjXCkVIa6",
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
    "c=IN IP4 0.0.0.0",
    "a=ice-ufrag:EsAw",
    "a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y",
    "a=ice-options:trickle",
    "a=fingerprint:sha-256 DA:52:67:C5:2A:2E:91:13:A2:7D:3A:E1:2E:A4:F3:28:90:67:71:0E:B7:6F:7B:"
    "56:79:F4:B2:D1:54:4B:92:7E",
    "a=setup:actpass",
    "a=mid:2",
    "a=sctp-port:5000",
    "a=max-message-size:262144",
};

std::string const chrome_offer_summary =
    "offer: audio(opus,red,G722,PCMU,PCMA,CN,telephone-event) "
    "video(VP8,rtx,VP9,H264,red,ulpfec) application(webrtc-datachannel)";

// Firefox answering that offer without a camera.
strings const answer_without_video = {
    "v=0",
    "o=mozilla...THIS_IS_SDPARTA-99.0 5213443093582233467 0 IN IP4 0.0.0.0",
    "s=-",
    "t=0 0",
    "a=fingerprint:sha-256 9F:21:0A:BB:47:5E:C1:08:73:6D:E4:12:9A:0C:5B:33:D7:41:2E:88:6F:90:1D:"
    "A2:C4:57:E9:30:BB:14:6A:02",
    "a=group:BUNDLE 0 2",
    "a=ice-options:trickle",
    "a=msid-semantic:WMS *",
    "m=audio 9 UDP/TLS/RTP/SAVPF 111 0",
    "c=IN IP4 0.0.0.0",
    "a=sendrecv",
    "a=mid:0",
    "a=rtpmap:111 opus/48000/2",
    "a=rtpmap:0 PCMU/8000",
    "a=setup:active",
    "m=video 0 UDP/TLS/RTP/SAVPF 96",
    "c=IN IP4 0.0.0.0",
    "a=inactive",
    "a=mid:1",
    "a=rtpmap:96 VP8/90000",
    "m=application 9 UDP/DTLS/SCTP webrtc-datachannel",
    "c=IN IP4 0.0.0.0",
    "a=mid:2",
    "a=sctp-port:5000",
};

std::string const answer_without_video_summary =
    "answer: audio(opus,PCMU) video(rejected) application(webrtc-datachannel)";

std::string candidate_json(std::string_view candidate) {
  return R"({"candidate":")" + std::string(candidate) + R"(","sdpMid":"0","sdpMLineIndex":0})";
}

bool parses_as_json(std::string_view text) { return json::parse(text, 64).ok(); }

}  // namespace

// --- summarize_signal: SDP. ---------------------------------------------------

TEST_CASE("summary: a Chrome offer lists its sections and codecs in order", "[history]") {
  CHECK(summarize_signal(description("offer", chrome_offer)) == chrome_offer_summary);
}

TEST_CASE("summary: an answer marks a section with port 0 rejected", "[history]") {
  CHECK(summarize_signal(description("answer", answer_without_video)) ==
        answer_without_video_summary);
}

TEST_CASE("summary: every description shape gives the same summary", "[history]") {
  std::string const inner = description("offer", chrome_offer);
  for (std::string const& payload :
       {inner, R"({"description":)" + inner + "}", R"({"sdp":)" + inner + "}",
        R"({"peer":"p2","description":)" + inner + R"(,"polite":true})"}) {
    INFO(payload.substr(0, 40));
    CHECK(summarize_signal(payload) == chrome_offer_summary);
  }
}

TEST_CASE("summary: LF line endings, pranswer, rollback and odd sections", "[history]") {
  CHECK(summarize_signal(R"({"type":"offer","sdp":"v=0\nm=audio 9 RTP/AVP 0\na=rtpmap:0 PCMU/8000\n"})") ==
        "offer: audio(PCMU)");
  CHECK(summarize_signal(R"({"type":"pranswer","sdp":"v=0\r\nm=audio 9 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2"})") ==
        "pranswer: audio(opus)");
  CHECK(summarize_signal(R"({"type":"rollback"})") == "rollback");
  CHECK(summarize_signal(R"({"type":"rollback","sdp":""})") == "rollback");
  CHECK(summarize_signal(R"({"description":{"type":"rollback","sdp":""}})") == "rollback");
  // No rtpmap: the static payload type names no codec.
  CHECK(summarize_signal(R"({"type":"offer","sdp":"v=0\r\nm=audio 9 RTP/AVP 0\r\n"})") ==
        "offer: audio");
  CHECK(summarize_signal(R"({"type":"offer","sdp":""})") == "offer: no media");
  CHECK(summarize_signal(R"({"type":"answer","sdp":"v=0\r\ns=-\r\n"})") == "answer: no media");
  // The pre-2019 data channel form names its protocol in a=sctpmap.
  CHECK(summarize_signal(
            R"({"type":"offer","sdp":"m=application 9 DTLS/SCTP 5000\r\na=sctpmap:5000 webrtc-datachannel 1024\r\n"})") ==
        "offer: application(webrtc-datachannel)");
  // Port 0 with a port count is still port 0; a port of 00 too.
  CHECK(summarize_signal(R"({"type":"answer","sdp":"m=video 0/2 RTP/AVP 96\r\nm=audio 00 RTP/AVP 0"})") ==
        "answer: video(rejected) audio(rejected)");
  // Codecs before any m= line belong to no section.
  CHECK(summarize_signal(R"({"type":"offer","sdp":"a=rtpmap:0 PCMU/8000\r\nm=audio 9 RTP/AVP 0"})") ==
        "offer: audio");
  // Control characters from the payload never reach the summary.
  CHECK(summarize_signal(R"({"type":"offer","sdp":"m=au\u0007dio 9 RTP/AVP 0\ra=rtpmap:0 PC\u001bMU/8000"})") ==
        "offer: au?dio(PC?MU)");
}

TEST_CASE("summary: descriptions that are not quite descriptions are sized", "[history]") {
  for (std::string_view payload : {
           R"({"type":"offer"})",                        // no sdp
           R"({"type":"offer","sdp":42})",               // sdp not a string
           R"({"type":"Offer","sdp":"m=audio 9 x 0"})",  // types are case-sensitive
           R"({"type":"hello","sdp":"m=audio 9 x 0"})",
           R"({"sdp":"v=0\r\nm=audio 9 RTP/AVP 0"})",    // no type
           R"({"description":"offer"})",
           R"({"ice":{"ice":{"ice":{"ice":{"candidate":""}}}}})",  // too many wrappers
       }) {
    INFO(payload);
    CHECK(summarize_signal(payload) == bytes(payload));
  }
}

// --- summarize_signal: ICE candidates. --------------------------------------------

TEST_CASE("summary: candidates give their type and transport", "[history]") {
  struct sample {
    std::string_view candidate;
    std::string_view summary;
  };
  for (auto [candidate, summary] : std::vector<sample>{
           {"candidate:3053486437 1 udp 2122260223 192.168.1.20 53421 typ host generation 0 "
            "ufrag EsAw network-id 1",
            "candidate: host udp"},
           {"candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 192.168.1.20 "
            "rport 53421 generation 0 ufrag EsAw network-id 1",
            "candidate: srflx udp"},
           {"candidate:1457836447 1 udp 41885439 198.51.100.4 61222 typ relay raddr 203.0.113.7 "
            "rport 46154 generation 0 ufrag EsAw network-id 1",
            "candidate: relay udp"},
           {"candidate:2400211349 1 udp 1853824767 203.0.113.9 50001 typ prflx raddr 0.0.0.0 rport 0",
            "candidate: prflx udp"},
           {"candidate:4233069003 1 tcp 1518280447 192.168.1.20 9 typ host tcptype active "
            "generation 0",
            "candidate: host tcp"},
           {"candidate:1 1 TCP 2105524479 2001:db8::5 9 typ host tcptype active",
            "candidate: host tcp"},  // Firefox writes TCP and UDP in capitals
           {"candidate:0 1 UDP 8265471 198.51.100.4 61222 typ relay raddr 0.0.0.0 rport 0",
            "candidate: relay udp"},
           {"candidate:3 1 tcp 25042943 198.51.100.4 443 typ relay raddr 0.0.0.0 rport 0",
            "candidate: relay tcp"},
           {"candidate:1 1 udp 2122260223 1f4712db-ea17-4bcf-a596-105139dfd8bf.local 53421 typ host",
            "candidate: host udp"},
           {"a=candidate:1 1 udp 2122260223 10.0.0.1 53421 typ host", "candidate: host udp"},
       }) {
    INFO(candidate);
    std::string const shapes[] = {
        candidate_json(candidate),
        R"({"candidate":)" + candidate_json(candidate) + "}",
        R"({"ice":)" + candidate_json(candidate) + "}",
        R"({"candidate":")" + std::string(candidate) + R"("})",
    };
    for (auto const& payload : shapes) CHECK(summarize_signal(payload) == summary);
  }
}

TEST_CASE("summary: end of candidates", "[history]") {
  for (std::string_view payload : {
           R"({"candidate":""})",
           R"({"candidate":"","sdpMid":"0","sdpMLineIndex":0})",
           R"({"candidate":{"candidate":"","sdpMid":"0","sdpMLineIndex":0,"usernameFragment":"EsAw"}})",
           R"({"ice":{"candidate":""}})",
           R"({"ice":{"ice":{"ice":{"candidate":""}}}})",  // three wrappers are unwrapped
           R"({"candidate":null})",
           R"({"candidate":"a=end-of-candidates"})",
           R"({"candidate":"   "})",
       }) {
    INFO(payload);
    CHECK(summarize_signal(payload) == "end-of-candidates");
  }
}

TEST_CASE("summary: candidates without the grammar are sized", "[history]") {
  for (std::string_view payload : {
           R"({"candidate":"candidate:1 1 udp 2122260223 10.0.0.1 53421"})",   // no typ
           R"({"candidate":"candidate:1 1 udp 2122260223 10.0.0.1 53421 typ"})",  // typ, no type
           R"({"candidate":"hello world"})",
           R"({"candidate":42})",
           R"({"ice":"candidate:1 1 udp 1 10.0.0.1 1 typ host"})",
       }) {
    INFO(payload);
    CHECK(summarize_signal(payload) == bytes(payload));
  }
}

// --- summarize_signal: everything else. -----------------------------------------

TEST_CASE("summary: other payloads are their size in bytes", "[history]") {
  for (std::string_view payload : std::vector<std::string_view>{
           R"({})", R"({"hello":"world"})", R"([1,2,3])",
           R"(["offer",{"type":"offer","sdp":"m=audio 9 x 0"}])", R"("a string")", R"(42)",
           R"(null)", R"(true)", "", "not json", R"({"type":"offer","sdp":"m=audio)",
           R"({"type":"offer","sdp":"x"} trailing)", "{\"a\":\"\xff\"}",
           std::string_view("{\"a\":\0}", 7),
       }) {
    INFO(payload);
    CHECK(summarize_signal(payload) == bytes(payload));
  }
}

TEST_CASE("summary: huge and hostile inputs", "[history]") {
  std::string const garbage(4 << 20, '{');
  CHECK(summarize_signal(garbage) == bytes(garbage));

  std::string nested;
  for (int i = 0; i < 100000; ++i) nested += R"({"ice":)";
  CHECK(summarize_signal(nested) == bytes(nested));

  // Thousands of sections with thousands of distinct codecs stay linear.
  strings lines{"v=0"};
  for (int section = 0; section < 1000; ++section) {
    lines.push_back("m=video 9 UDP/TLS/RTP/SAVPF 96");
    for (int codec = 0; codec < 50; ++codec)
      lines.push_back("a=rtpmap:96 c" + std::to_string(section * 100 + codec) + "/90000");
  }
  std::string const big = description("offer", lines);
  std::string const summary = summarize_signal(big);
  CHECK(summary.starts_with("offer: video(c0,c1,c2,"));
  CHECK(summary.ends_with(",c99949)"));

  std::string const long_candidate =
      candidate_json("candidate:1 1 udp 1 10.0.0.1 1 typ host " + std::string(1 << 20, 'x'));
  CHECK(summarize_signal(long_candidate) == "candidate: host udp");
}

// --- redact_addresses. ------------------------------------------------------------

TEST_CASE("redact: IPv4 literals", "[history]") {
  struct sample {
    std::string_view text;
    std::string_view redacted;
  };
  for (auto [text, redacted] : std::vector<sample>{
           {"1.2.3.4", "x.x.x.x"},
           {"0.0.0.0", "x.x.x.x"},
           {"255.255.255.255", "x.x.x.x"},
           {"c=IN IP4 203.0.113.7", "c=IN IP4 x.x.x.x"},
           {"from 10.0.0.1:5000 to 10.0.0.2", "from x.x.x.x:5000 to x.x.x.x"},
           {"turn:198.51.100.4:3478?transport=udp", "turn:x.x.x.x:3478?transport=udp"},
           {"seen at 10.0.0.1.", "seen at x.x.x.x."},
           {"(192.168.0.1)", "(x.x.x.x)"},
           {"a,1.2.3.4,b", "a,x.x.x.x,b"},
           {"010.001.000.009", "x.x.x.x"},
           // Not addresses: octets out of range, too few or too many parts,
           // part of a longer dotted or alphanumeric run.
           {"256.1.1.1", "256.1.1.1"},
           {"1.2.3.1000", "1.2.3.1000"},
           {"1.2.3", "1.2.3"},
           {"1.2.3.4.5", "1.2.3.4.5"},
           {"libfoo 1.2.3.4.5-beta", "libfoo 1.2.3.4.5-beta"},
           {"v1.2.3.4", "v1.2.3.4"},
           {"1.2.3.4a", "1.2.3.4a"},
           {"1.2.3.4.nip.io", "1.2.3.4.nip.io"},
           {".1.2.3.4", ".1.2.3.4"},
           {"1..2.3.4", "1..2.3.4"},
           {"3.14159", "3.14159"},
       }) {
    INFO(text);
    CHECK(redact_addresses(text) == redacted);
  }
}

TEST_CASE("redact: IPv6 literals", "[history]") {
  struct sample {
    std::string_view text;
    std::string_view redacted;
  };
  for (auto [text, redacted] : std::vector<sample>{
           {"::1", "x:x::x"},
           {"::", "x:x::x"},
           {"2001:db8::7", "x:x::x"},
           {"2001:0db8:85a3:0000:0000:8a2e:0370:7334", "x:x::x"},
           {"2001:DB8:85A3::8A2E:370:7334", "x:x::x"},
           {"fe80::", "x:x::x"},
           {"fe80::1%eth0 up", "x:x::x up"},
           {"fe80::1%25en0", "x:x::x"},
           {"::ffff:1.2.3.4", "x:x::x"},
           {"64:ff9b::192.0.2.33", "x:x::x"},
           {"[2001:db8::1]:3478", "[x:x::x]:3478"},
           {"c=IN IP6 2001:db8::7", "c=IN IP6 x:x::x"},
           {"at 2001:db8::1.", "at x:x::x."},
           {"1:2:3:4:5:6:7:8", "x:x::x"},
           {"1::2:3:4:5:6:7", "x:x::x"},
           // Not addresses.
           {"1:2:3:4:5:6:7", "1:2:3:4:5:6:7"},          // 7 groups, no "::"
           {"1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7:8:9"},  // 9 groups
           {"1::2:3:4:5:6:7:8", "1::2:3:4:5:6:7:8"},    // "::" stands for no group
           {"1::2::3", "1::2::3"},                      // two "::"
           {"12345::1", "12345::1"},                    // 5 hex digits
           {"10:00:00", "10:00:00"},
           {"starts 10:00:00.250", "starts 10:00:00.250"},
           {"00:1a:2b:3c:4d:5e", "00:1a:2b:3c:4d:5e"},  // MAC address
           {"std::string and sig::history", "std::string and sig::history"},
           {"x::1", "x::1"},
           {"fe80::1x", "fe80::1x"},
           {"2001:db8::1:g", "2001:db8::1:g"},
       }) {
    INFO(text);
    CHECK(redact_addresses(text) == redacted);
  }
}

TEST_CASE("redact: SDP tokens that are not addresses stay", "[history]") {
  for (std::string_view text : {
           "a=fingerprint:sha-256 DA:52:67:C5:2A:2E:91:13:A2:7D:3A:E1:2E:A4:F3:28:90:67:71:0E:B7:"
           "6F:7B:56:79:F4:B2:D1:54:4B:92:7E",
           "a=fingerprint:sha-1 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B:19:E5:7C:AB",
           "a=ice-ufrag:EsAw",
           "a=ice-pwd:bP+XJMM09aR8AiX1jdukzR6Y",
           "a=msid:7d5e1f2a-4b4c-4a2b-9d2e-2b8a3f6c1d00 0b3c4d5e-6f70-4182-93a4-b5c6d7e8f901",
           "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
           "a=rtpmap:111 opus/48000/2",
           "a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f",
           "a=ssrc:3735928559 cname:4TOk42mSjXCkVIa6",
           "o=- 4611731400430051336 2 IN IP4",
           "candidate:1 1 udp 2122260223 1f4712db-ea17-4bcf-a596-105139dfd8bf.local 53421 typ host",
           "a=sctp-port:5000",
           "2026-11-22T10:00:00.250+01:00",
       }) {
    INFO(text);
    CHECK(redact_addresses(text) == text);
  }
}

TEST_CASE("redact: an SDP in JSON keeps everything but its addresses", "[history]") {
  strings lines = chrome_offer;
  lines.insert(lines.begin() + 15,
               {"a=candidate:3053486437 1 udp 2122260223 192.168.1.20 53421 typ host generation 0",
                "a=candidate:2999745851 1 udp 2122194687 2001:db8:85a3::8a2e:370:7334 53422 typ host",
                "a=candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr "
                "192.168.1.20 rport 53421",
                "a=candidate:1 1 udp 2122131711 fe80::1c2b:3dff:fe4e:5f60%en0 53423 typ host",
                "a=candidate:2 1 udp 2122131711 ::ffff:198.51.100.4 53424 typ host"});
  lines[1] = "o=- 4611731400430051336 2 IN IP6 ::1";
  std::string const text = description("offer", lines);
  REQUIRE(parses_as_json(text));

  std::string const redacted = redact_addresses(text);
  CHECK(parses_as_json(redacted));
  CHECK(summarize_signal(redacted) == chrome_offer_summary);

  strings expected = chrome_offer;
  expected.insert(expected.begin() + 15,
                  {"a=candidate:3053486437 1 udp 2122260223 x.x.x.x 53421 typ host generation 0",
                   "a=candidate:2999745851 1 udp 2122194687 x:x::x 53422 typ host",
                   "a=candidate:842163049 1 udp 1677729535 x.x.x.x 46154 typ srflx raddr "
                   "x.x.x.x rport 53421",
                   "a=candidate:1 1 udp 2122131711 x:x::x 53423 typ host",
                   "a=candidate:2 1 udp 2122131711 x:x::x 53424 typ host"});
  expected[1] = "o=- 4611731400430051336 2 IN IP6 x:x::x";
  for (auto& line : expected) {
    if (line == "c=IN IP4 0.0.0.0") line = "c=IN IP4 x.x.x.x";
    if (line == "a=rtcp:9 IN IP4 0.0.0.0") line = "a=rtcp:9 IN IP4 x.x.x.x";
  }
  CHECK(redacted == description("offer", expected));
}

TEST_CASE("redact: a candidate in JSON stays valid JSON", "[history]") {
  std::string const text = candidate_json(
      "candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 10.0.0.5 rport "
      "46154 generation 0 ufrag EsAw network-id 1");
  std::string const redacted = redact_addresses(text);
  CHECK(redacted == candidate_json("candidate:842163049 1 udp 1677729535 x.x.x.x 46154 typ srflx "
                                   "raddr x.x.x.x rport 46154 generation 0 ufrag EsAw network-id 1"));
  CHECK(parses_as_json(redacted));
  CHECK(summarize_signal(redacted) == "candidate: srflx udp");

  std::string const v6 = R"({"ice":{"candidate":"candidate:1 1 udp 1 2001:db8::7 9 typ host","sdpMid":"0"}})";
  CHECK(redact_addresses(v6) ==
        R"({"ice":{"candidate":"candidate:1 1 udp 1 x:x::x 9 typ host","sdpMid":"0"}})");
}

TEST_CASE("redact: JSON escapes next to addresses", "[history]") {
  struct sample {
    std::string_view text;
    std::string_view redacted;
  };
  for (auto [text, redacted] : std::vector<sample>{
           // An escaped character is a boundary: "\n" then an address.
           {R"(["\n1.2.3.4\t10.0.0.1\r\n"])", R"(["\nx.x.x.x\tx.x.x.x\r\n"])"},
           // "\f" is a form feed, so the address is "e80::1", and the escape stays whole.
           {R"(["\fe80::1"])", R"(["\fx:x::x"])"},
           {R"(["\\1.2.3.4"])", R"(["\\x.x.x.x"])"},
           {R"(["\u00201.2.3.4"])", R"(["\u0020x.x.x.x"])"},
           {R"(["\"::1\""])", R"(["\"x:x::x\""])"},
           {R"(["\/fe80::1%eth0\/"])", R"(["\/x:x::x\/"])"},
           // Outside JSON a backslash before a digit is just a character.
           {R"(C:\1.2.3.4)", R"(C:\x.x.x.x)"},
       }) {
    INFO(text);
    CHECK(redact_addresses(text) == redacted);
    if (text.starts_with("[")) CHECK(parses_as_json(redact_addresses(text)));
  }
}

TEST_CASE("redact: empty, huge and repetitive inputs", "[history]") {
  CHECK(redact_addresses("") == "");
  CHECK(redact_addresses("no addresses here") == "no addresses here");

  // Long runs that look almost like addresses are scanned once.
  for (std::string_view unit : {"1.", "1:", "a:", "1::", "::", "1", "\\", "\\u", "ffff", "%"}) {
    std::string text;
    while (text.size() < (1 << 20)) text += unit;
    INFO(unit);
    CHECK(redact_addresses(text).size() <= text.size() + 8);
  }

  std::string many;
  for (int i = 0; i < 100000; ++i) many += "10.0.0.1 ::1 ";
  std::string expected;
  for (int i = 0; i < 100000; ++i) expected += "x.x.x.x x:x::x ";
  CHECK(redact_addresses(many) == expected);
}

// --- parse_point and rfc3339. -------------------------------------------------

namespace {

constexpr std::int64_t now_ms = 1'795'000'000'000;  // 2026-11-18T11:06:40Z

point sequence(std::uint64_t seq) { return point{point::kind::sequence, seq, 0}; }
point time_at(std::int64_t ms) { return point{point::kind::time, 0, ms}; }

}  // namespace

TEST_CASE("time point: accepted texts", "[history]") {
  struct sample {
    std::string_view text;
    point expected;
  };
  for (auto [text, expected] : std::vector<sample>{
           {"1", sequence(1)},
           {"1234", sequence(1234)},
           {"007", sequence(7)},
           {"18446744073709551615", sequence(18446744073709551615ull)},
           {"1970-01-01T00:00:00Z", time_at(0)},
           {"2026-11-22T10:00:00Z", time_at(1'795'341'600'000)},
           {"2026-11-22t10:00:00z", time_at(1'795'341'600'000)},
           {"2026-11-22 10:00:00Z", time_at(1'795'341'600'000)},
           {"2026-11-22T10:00:00.250+01:00", time_at(1'795'341'600'000 - 3'600'000 + 250)},
           {"2026-11-22T10:00:00-05:30", time_at(1'795'341'600'000 + 19'800'000)},
           {"2026-11-22T10:00:00+00:00", time_at(1'795'341'600'000)},
           {"2026-11-22T10:00:00-00:00", time_at(1'795'341'600'000)},
           {"2026-11-22T10:00:00.5Z", time_at(1'795'341'600'500)},
           {"2026-11-22T10:00:00.25Z", time_at(1'795'341'600'250)},
           {"2026-11-22T10:00:00.123456789Z", time_at(1'795'341'600'123)},
           {"2026-11-22T10:00:00.999999Z", time_at(1'795'341'600'999)},
           {"2024-02-29T00:00:00Z", time_at(1'709'164'800'000)},
           {"2000-02-29T12:00:00Z", time_at(951'825'600'000)},
           {"2026-12-31T23:59:59.999Z", time_at(1'798'761'599'999)},
           {"2016-12-31T23:59:60Z", time_at(1'483'228'800'000)},  // a leap second
           {"1969-12-31T23:59:59.999Z", time_at(-1)},
           {"0000-01-01T00:00:00Z", time_at(-62'167'219'200'000)},
           {"9999-12-31T23:59:59.999Z", time_at(253'402'300'799'999)},
           {"500ms", time_at(now_ms - 500)},
           {"90s", time_at(now_ms - 90'000)},
           {"10m", time_at(now_ms - 600'000)},
           {"2h", time_at(now_ms - 7'200'000)},
           {"1d", time_at(now_ms - 86'400'000)},
           {"1h30m", time_at(now_ms - 5'400'000)},
           {"1d2h3m4s5ms", time_at(now_ms - 93'784'005)},
           {"1m1ms", time_at(now_ms - 60'001)},
           {"0h10m", time_at(now_ms - 600'000)},
           {"100000d", time_at(now_ms - 8'640'000'000'000)},  // before 1970 is still a time
       }) {
    INFO(text);
    std::string error;
    auto parsed = parse_point(text, now_ms, &error);
    REQUIRE(parsed);
    CHECK(*parsed == expected);
    CHECK(error.empty());
  }
}

TEST_CASE("time point: rejected texts name themselves", "[history]") {
  struct sample {
    std::string_view text;
    std::string_view error;
  };
  std::string_view const generic = "is not a sequence, an RFC 3339 time or a duration such as 10m";
  for (auto [text, error] : std::vector<sample>{
           {"0", "\"0\" is not a sequence: sequences start at 1"},
           {"000", "\"000\" is not a sequence: sequences start at 1"},
           {"18446744073709551616", "\"18446744073709551616\" is too large for a sequence"},
           {"0s", "\"0s\" is not a duration longer than zero"},
           {"0h0m", "\"0h0m\" is not a duration longer than zero"},
           {"99999999999999999999d", "\"99999999999999999999d\" is too long a duration"},
           {"999999999999999d", "\"999999999999999d\" is too long a duration"},
           {"9223372036854775807ms1ms", "\"9223372036854775807ms1ms\" is too long a duration"},
           {"", generic},
           {"-5", generic},
           {"+5", generic},
           {" 5", generic},
           {"5 ", generic},
           {"10x", generic},
           {"10", ""},  // a sequence: checked below as accepted
           {"1h30", generic},
           {"h", generic},
           {"1.5h", generic},
           {"10M", generic},
           {"1w", generic},
           {"99999999999999999999x", generic},
           {"-10m", generic},
           {"2026-13-01T00:00:00Z", generic},
           {"2026-00-01T00:00:00Z", generic},
           {"2026-02-29T00:00:00Z", generic},  // 2026 is not a leap year
           {"1900-02-29T00:00:00Z", generic},
           {"2026-04-31T00:00:00Z", generic},
           {"2026-01-00T00:00:00Z", generic},
           {"2026-01-32T00:00:00Z", generic},
           {"2026-01-01T24:00:00Z", generic},
           {"2026-01-01T00:60:00Z", generic},
           {"2026-01-01T00:00:61Z", generic},
           {"2026-01-01T00:00:00", generic},  // no offset
           {"2026-01-01T00:00:00.Z", generic},
           {"2026-01-01T00:00:00+0100", generic},
           {"2026-01-01T00:00:00+24:00", generic},
           {"2026-01-01T00:00:00+01:60", generic},
           {"2026-01-01T00:00:00ZZ", generic},
           {"2026-01-01X00:00:00Z", generic},
           {"2026-1-01T00:00:00Z", generic},
           {"26-01-01T00:00:00Z", generic},
           {"2026-01-01", generic},
           {"2026-01-01T00:00Z", generic},
       }) {
    INFO(text);
    std::string message;
    auto parsed = parse_point(text, now_ms, &message);
    if (error.empty()) {
      CHECK(parsed);
      continue;
    }
    CHECK_FALSE(parsed);
    if (error == generic)
      CHECK(message == "\"" + std::string(text) + "\" " + std::string(generic));
    else
      CHECK(message == error);
  }
  // The error is optional.
  CHECK_FALSE(parse_point("nope", now_ms, nullptr));
  CHECK(parse_point("5", now_ms, nullptr) == sequence(5));
}

TEST_CASE("time point: a duration far back from a made-up now is refused, not wrapped", "[history]") {
  std::string error;
  CHECK_FALSE(parse_point("1000000000d", INT64_MIN + 1, &error));
  CHECK(error == "\"1000000000d\" is too long a duration");
}

TEST_CASE("time point: rfc3339 formats UTC with milliseconds", "[history]") {
  CHECK(rfc3339(0) == "1970-01-01T00:00:00.000Z");
  CHECK(rfc3339(1) == "1970-01-01T00:00:00.001Z");
  CHECK(rfc3339(-1) == "1969-12-31T23:59:59.999Z");
  CHECK(rfc3339(-1000) == "1969-12-31T23:59:59.000Z");
  CHECK(rfc3339(-1001) == "1969-12-31T23:59:58.999Z");
  CHECK(rfc3339(1'795'341'600'250) == "2026-11-22T10:00:00.250Z");
  CHECK(rfc3339(1'709'164'800'000) == "2024-02-29T00:00:00.000Z");
  CHECK(rfc3339(-62'167'219'200'000) == "0000-01-01T00:00:00.000Z");
  CHECK(rfc3339(253'402'300'799'999) == "9999-12-31T23:59:59.999Z");
  // Out of RFC 3339's range: still text, never a crash.
  CHECK_FALSE(rfc3339(INT64_MAX).empty());
  CHECK_FALSE(rfc3339(INT64_MIN).empty());
}

TEST_CASE("time point: rfc3339 and parse_point round trip", "[history]") {
  std::vector<std::int64_t> samples{0,
                                    1,
                                    -1,
                                    999,
                                    -999,
                                    86'399'999,
                                    951'782'400'000,
                                    1'709'164'800'000,
                                    1'795'341'600'250,
                                    -62'167'219'200'000,
                                    253'402'300'799'999};
  // Every day boundary across four years, including a leap day.
  for (std::int64_t day = 19'700; day < 19'700 + 4 * 366; ++day) samples.push_back(day * 86'400'000 + 12'345);
  for (std::int64_t ms : samples) {
    INFO(ms);
    std::string const text = rfc3339(ms);
    std::string error;
    auto parsed = parse_point(text, now_ms, &error);
    REQUIRE(parsed);
    CHECK(*parsed == time_at(ms));
  }
}
