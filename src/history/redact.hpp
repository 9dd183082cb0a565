#pragma once
// Masks network addresses in text (signal payloads carry them in SDP and ICE
// candidates). Pure.
#include <string>
#include <string_view>

namespace sig::history {

// Every IPv4 literal becomes "x.x.x.x" and every IPv6 literal "x:x::x"
// (length changes are fine). Ports, mDNS names (*.local) and other text stay.
// The result of redacting JSON text is still valid JSON. A literal counts only
// when it stands alone, so version strings (1.2.3.4.5), fingerprints
// (AB:CD:...), times (10:00:00) and MAC addresses stay; redact.cpp has the rule.
std::string redact_addresses(std::string_view text);

}  // namespace sig::history
