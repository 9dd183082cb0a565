#include "adapters/nats/connection.hpp"

#include <cctype>

#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include <string_view>
#include <thread>

#include "adapters/nats/event_loop.hpp"
#include "adapters/nats/nats_errors.hpp"
#include "auth/url_credentials.hpp"

namespace sig::nats {

void open_library() { nats_Open(0); }

std::vector<std::string> server_urls(std::string_view list) {
  std::vector<std::string> out;
  while (!list.empty()) {
    auto comma = list.find(',');
    auto entry = list.substr(0, comma);
    while (!entry.empty() && std::isspace(static_cast<unsigned char>(entry.front()))) entry.remove_prefix(1);
    while (!entry.empty() && std::isspace(static_cast<unsigned char>(entry.back()))) entry.remove_suffix(1);
    if (!entry.empty()) out.emplace_back(entry);
    if (comma == std::string_view::npos) break;
    list.remove_prefix(comma + 1);
  }
  return out;
}


connection::connection(connection_settings settings, std::shared_ptr<spdlog::logger> log)
    : settings_(std::move(settings)), log_(std::move(log)) {}

connection::~connection() {
  close();
  if (js_ != nullptr) jsCtx_Destroy(js_);
  if (nc_ != nullptr) natsConnection_Destroy(nc_);
  if (opts_ != nullptr) natsOptions_Destroy(opts_);
}

bool connection::uses_tls() const {
  auto const& sec = settings_.security;
  return sec.tls || !sec.tls_ca.empty() || !sec.tls_cert.empty() || settings_.url.starts_with("tls://");
}

// A file that cannot be read (or a nats.c built without TLS) stops the
// start with the reason, naming the setting.
bool connection::apply_security() {
  auto const& sec = settings_.security;
  auto check = [&](natsStatus s, char const* what) {
    if (s != NATS_OK) fail(nats_error(s), std::string("NATS ") + what);
    return s == NATS_OK;
  };
  if (!sec.user.empty() || !sec.password.empty()) {
    if (!check(natsOptions_SetUserInfo(opts_, sec.user.c_str(), sec.password.c_str()), "user and password"))
      return false;
  }
  if (!sec.token.empty() && !check(natsOptions_SetToken(opts_, sec.token.c_str()), "token")) return false;
  if (!sec.creds_file.empty() &&
      !check(natsOptions_SetUserCredentialsFromFiles(opts_, sec.creds_file.c_str(), nullptr), "credentials file"))
    return false;
  if (uses_tls() && !check(natsOptions_SetSecure(opts_, true), "TLS")) return false;
  if (!sec.tls_ca.empty() && !check(natsOptions_LoadCATrustedCertificates(opts_, sec.tls_ca.c_str()), "TLS CA file"))
    return false;
  if (!sec.tls_cert.empty() || !sec.tls_key.empty()) {
    if (!check(natsOptions_LoadCertificatesChain(opts_, sec.tls_cert.c_str(), sec.tls_key.c_str()),
               "TLS client certificate and key"))
      return false;
  }
  return true;
}

// Our own close explains any failure after it. NATS being away is retried
// (connecting with backoff, and nats.c reconnects), so it is a warning;
// anything else (credentials, TLS, a file) waits for an operator.
void connection::fail(std::error_code ec, std::string_view what) const {
  auto level = closing_ ? spdlog::level::debug : nats_outage(ec) ? spdlog::level::warn : spdlog::level::err;
  log_->log(level, "{}: {}", what, with_nats_trace(ec));
}

void connection::on_disconnected(natsConnection*, void* closure) {
  auto* self = static_cast<connection*>(closure);
  if (!self->closing_) self->log_->warn("lost the connection to NATS ({}); reconnecting", self->settings_.name);
}

void connection::on_reconnected(natsConnection*, void* closure) {
  auto* self = static_cast<connection*>(closure);
  self->log_->info("reconnected to NATS ({})", self->settings_.name);
}

void connection::on_closed(natsConnection*, void* closure) {
  auto* self = static_cast<connection*>(closure);
  std::lock_guard lock(self->closed_mutex_);
  self->closed_ = true;
  self->closed_signal_.notify_all();
}

bool connection::connect_once() {
  natsStatus s = natsConnection_Connect(&nc_, opts_);
  if (s != NATS_OK) {
    fail(nats_error(s), "cannot connect to NATS at " + auth::url_without_credentials(settings_.url));
    nc_ = nullptr;
    return false;
  }
  jsOptions jo;
  jsOptions_Init(&jo);
  jo.Wait = 5000;
  s = natsConnection_JetStream(&js_, nc_, &jo);
  if (s != NATS_OK) {
    fail(nats_error(s), "cannot create a JetStream context");
    return false;
  }
  return true;
}

bool connection::open(std::atomic<bool> const& stop, event_loop* loop) {
  natsOptions_Create(&opts_);
  // Every server of the list: nats.c picks one, and moves to another (and
  // to servers the cluster tells it about) when it goes away.
  auto servers = server_urls(settings_.url);
  std::vector<char const*> server_list;
  for (auto const& url : servers) server_list.push_back(url.c_str());
  if (server_list.size() > 1) {
    natsOptions_SetServers(opts_, server_list.data(), static_cast<int>(server_list.size()));
    natsOptions_SetNoRandomize(opts_, false);
  } else {
    natsOptions_SetURL(opts_, settings_.url.c_str());
  }
  if (!apply_security()) return false;
  if (!settings_.name.empty()) natsOptions_SetName(opts_, settings_.name.c_str());
  if (loop != nullptr) {
    // Without SendAsap, nats.c's flusher thread would still decide when to
    // write, from its own thread, a millisecond late.
    loop->install(opts_, uses_tls(), settings_.fault_receive_buffer);
    natsOptions_SetSendAsap(opts_, true);
  } else {
    natsOptions_SetSendAsap(opts_, settings_.send_asap);
  }
  natsOptions_SetMaxReconnect(opts_, -1);
  natsOptions_SetReconnectWait(opts_, 500);
  // No publish is held back while reconnecting: an append during an outage
  // fails at once (the client hears `unavailable`) instead of being sent
  // later, after its caller was already told it failed.
  natsOptions_SetReconnectBufSize(opts_, 1);
  natsOptions_SetTimeout(opts_, 2000);
  natsOptions_SetDisconnectedCB(opts_, &connection::on_disconnected, this);
  natsOptions_SetReconnectedCB(opts_, &connection::on_reconnected, this);
  natsOptions_SetClosedCB(opts_, &connection::on_closed, this);

  auto backoff = std::chrono::milliseconds(200);
  for (int attempt = 1; !stop && !connect_once(); ++attempt) {
    if (settings_.connect_attempts > 0 && attempt >= settings_.connect_attempts) return false;
    for (auto slept = std::chrono::milliseconds(0); slept < backoff && !stop; slept += std::chrono::milliseconds(50))
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
  }
  if (stop || nc_ == nullptr) return false;
  if (loop != nullptr) loop->bind(nc_);
  log_->info("connected to NATS at {}{} ({})", auth::url_without_credentials(settings_.url),
             uses_tls() ? " over TLS" : "", settings_.name);
  return true;
}

bool connection::connected() const {
  return nc_ != nullptr && !closing_ && natsConnection_Status(nc_) == NATS_CONN_STATUS_CONNECTED;
}

void connection::close() {
  if (closing_.exchange(true)) return;
  if (nc_ == nullptr) return;
  natsConnection_Close(nc_);
  std::unique_lock lock(closed_mutex_);
  if (!closed_signal_.wait_for(lock, std::chrono::seconds(5), [&] { return closed_; }))
    log_->warn("the NATS connection ({}) did not report closing within 5 s", settings_.name);
}

}  // namespace sig::nats
