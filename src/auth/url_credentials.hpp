#pragma once
// URLs may carry credentials (nats://user:password@host, redis://:pw@host);
// logs and error messages show them without.
#include <string>
#include <string_view>

namespace sig::auth {

// "nats://user:secret@host:4222" -> "nats://user:***@host:4222"; a token
// alone ("nats://tok@host") -> "nats://***@host". Several comma-separated
// URLs (a NATS server list) each lose theirs. Anything else is unchanged.
std::string url_without_credentials(std::string_view url);

}  // namespace sig::auth
