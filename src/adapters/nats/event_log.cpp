#include "adapters/nats/event_log.hpp"

#include "auth/url_credentials.hpp"

#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

namespace sig::nats {

namespace {

constexpr char msg_id_header[] = "Nats-Msg-Id";
constexpr std::int64_t nanos_per_second = 1'000'000'000;
constexpr int read_wait_ms = 5000;

// One line: nats.c's error stack has a line per frame, and a log line that
// breaks loses its timestamp and instance id.
std::string last_error(natsStatus status) {
  char stack[512] = {0};
  nats_GetLastErrorStack(stack, sizeof stack);
  std::string text = natsStatus_GetText(status);
  std::string frames;
  for (char c : std::string_view(stack)) frames += (c == '\n' || c == '\r') ? ' ' : c;
  while (!frames.empty() && frames.back() == ' ') frames.pop_back();
  if (!frames.empty()) text += " (" + frames + ")";
  return text;
}

constexpr int jetstream_subject_overlap = 10065;

std::uint64_t header_u64(natsMsg* msg, char const* key) {
  char const* value = nullptr;
  if (natsMsgHeader_Get(msg, key, &value) != NATS_OK || value == nullptr) return 0;
  return std::strtoull(value, nullptr, 10);
}

struct msg_deleter {
  void operator()(natsMsg* m) const { natsMsg_Destroy(m); }
};
using msg_ptr = std::unique_ptr<natsMsg, msg_deleter>;

struct live_closure {
  std::function<void(live_message)> on_message;
};

class core_subscription final : public live_subscription {
 public:
  explicit core_subscription(natsSubscription* sub) : sub_(sub) {}
  ~core_subscription() override {
    // The closure is freed by the completion callback, after the last
    // message handler has returned (see on_subscription_complete).
    natsSubscription_Unsubscribe(sub_);
    natsSubscription_Destroy(sub_);
  }

 private:
  natsSubscription* sub_;
};

void on_subscription_complete(void* closure) { delete static_cast<live_closure*>(closure); }

void on_live_message(natsConnection*, natsSubscription*, natsMsg* raw, void* closure) {
  msg_ptr msg(raw);
  live_message out;
  out.seq = header_u64(msg.get(), "Nats-Sequence");
  out.previous_subject_seq = header_u64(msg.get(), "Nats-Last-Sequence");
  out.payload.assign(natsMsg_GetData(msg.get()), static_cast<std::size_t>(natsMsg_GetDataLength(msg.get())));
  if (out.seq == 0) return;  // not a republished stream message
  static_cast<live_closure*>(closure)->on_message(std::move(out));
}

}  // namespace

struct event_log::impl {
  log_settings settings;
  std::shared_ptr<spdlog::logger> log;
  natsOptions* opts = nullptr;
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  kvStore* heartbeats = nullptr;
  std::atomic<bool> rollup_allowed{true};  // the stream takes Nats-Rollup (room snapshots)
  kvWatcher* heartbeat_watcher = nullptr;
  std::atomic<bool> stream_ok{false};
  std::atomic<bool> closing{false};  // our own close is not an outage

  // nats.c calls the connection callbacks on a thread of its own, in order,
  // after natsConnection_Close has returned: close() waits for the last one
  // (closed) so that none of them can run once this object is gone.
  std::mutex closed_mutex;
  std::condition_variable closed_signal;
  bool closed = false;

  static void on_closed(natsConnection*, void* closure) {
    auto* self = static_cast<impl*>(closure);
    std::lock_guard lock(self->closed_mutex);
    self->closed = true;
    self->closed_signal.notify_all();
  }

  // Appends waiting for their ack, by message id, each with its deadline.
  // The deadline is ours, not nats.c's: with jsPubOptions.MaxWait, nats.c
  // 3.4 hands a timed-out message to the ack handler (which destroys it)
  // while a publish stalled behind a slow server may still be encoding that
  // message, a use-after-free that crashed instances under overload.
  struct pending_append {
    std::function<void(append_result)> done;
    std::chrono::steady_clock::time_point deadline;
  };
  std::mutex pending_mutex;
  std::unordered_map<std::string, pending_append> pending;
  std::deque<std::pair<std::chrono::steady_clock::time_point, std::string>> deadlines;  // in time order
  std::condition_variable pending_signal;
  std::thread ack_timer;
  bool ack_timer_stop = false;

  std::function<void(append_result)> take_pending(std::string const& id) {
    std::lock_guard lock(pending_mutex);
    auto it = pending.find(id);
    if (it == pending.end()) return {};
    auto done = std::move(it->second.done);
    pending.erase(it);
    return done;
  }

  void add_pending(std::string const& id, std::function<void(append_result)> done) {
    auto deadline = std::chrono::steady_clock::now() + ack_timeout;
    std::lock_guard lock(pending_mutex);
    pending[id] = pending_append{std::move(done), deadline};
    deadlines.emplace_back(deadline, id);
  }

  // Fails the appends whose ack is overdue. A retry under the same id has
  // a later deadline of its own, so an old entry in `deadlines` does not
  // cut it short. A late ack finds nothing pending and is dropped.
  void expire_acks() {
    std::unique_lock lock(pending_mutex);
    while (!ack_timer_stop) {
      pending_signal.wait_for(lock, std::chrono::milliseconds(100));
      auto now = std::chrono::steady_clock::now();
      std::vector<std::function<void(append_result)>> overdue;
      while (!deadlines.empty() && deadlines.front().first <= now) {
        auto it = pending.find(deadlines.front().second);
        if (it != pending.end() && it->second.deadline <= now) {
          overdue.push_back(std::move(it->second.done));
          pending.erase(it);
        }
        deadlines.pop_front();
      }
      if (overdue.empty()) continue;
      lock.unlock();
      for (auto& done : overdue) done(append_result{false, 0, false, "Timeout"});
      lock.lock();
    }
  }

  static constexpr std::chrono::milliseconds ack_timeout{5000};  // an ack that never comes fails after this

  static void on_ack(jsCtx*, natsMsg* raw, jsPubAck* ack, jsPubAckErr* err, void* closure) {
    auto* self = static_cast<impl*>(closure);
    msg_ptr msg(raw);
    char const* id = nullptr;
    if (natsMsgHeader_Get(msg.get(), msg_id_header, &id) != NATS_OK || id == nullptr) return;
    auto done = self->take_pending(id);
    if (!done) return;
    append_result result;
    if (err != nullptr) {
      result.error = err->ErrText != nullptr ? err->ErrText : natsStatus_GetText(err->Err);
    } else if (ack != nullptr) {
      result.ok = true;
      result.seq = ack->Sequence;
      result.duplicate = ack->Duplicate;
    } else {
      result.error = "no acknowledgement";
    }
    done(std::move(result));
  }

  static void on_disconnected(natsConnection*, void* closure) {
    auto* self = static_cast<impl*>(closure);
    if (!self->closing) self->log->warn("lost the connection to NATS; reconnecting");
  }
  static void on_reconnected(natsConnection*, void* closure) {
    static_cast<impl*>(closure)->log->info("reconnected to NATS");
  }
  static void on_async_error(natsConnection*, natsSubscription*, natsStatus status, void* closure) {
    // NATS_SLOW_CONSUMER on a live subscription drops messages; rooms detect
    // the gap from the per-subject sequence and catch up from the stream.
    static_cast<impl*>(closure)->log->warn("NATS asynchronous error: {}", natsStatus_GetText(status));
  }

  // Credentials and TLS; a file that cannot be read (or a nats.c built
  // without TLS) stops the start with the reason, naming the setting.
  bool apply_security() {
    auto const& sec = settings.security;
    auto check = [&](natsStatus s, char const* what) {
      if (s != NATS_OK) log->error("NATS {}: {}", what, last_error(s));
      return s == NATS_OK;
    };
    if (!sec.user.empty() || !sec.password.empty()) {
      if (!check(natsOptions_SetUserInfo(opts, sec.user.c_str(), sec.password.c_str()), "user and password")) return false;
    }
    if (!sec.token.empty() && !check(natsOptions_SetToken(opts, sec.token.c_str()), "token")) return false;
    if (!sec.creds_file.empty() &&
        !check(natsOptions_SetUserCredentialsFromFiles(opts, sec.creds_file.c_str(), nullptr), "credentials file"))
      return false;
    if (uses_tls() && !check(natsOptions_SetSecure(opts, true), "TLS")) return false;
    if (!sec.tls_ca.empty() && !check(natsOptions_LoadCATrustedCertificates(opts, sec.tls_ca.c_str()), "TLS CA file"))
      return false;
    if (!sec.tls_cert.empty() || !sec.tls_key.empty()) {
      if (!check(natsOptions_LoadCertificatesChain(opts, sec.tls_cert.c_str(), sec.tls_key.c_str()),
                 "TLS client certificate and key"))
        return false;
    }
    return true;
  }

  bool uses_tls() const {
    auto const& sec = settings.security;
    return sec.tls || !sec.tls_ca.empty() || !sec.tls_cert.empty() || settings.url.starts_with("tls://");
  }

  bool connect_once() {
    natsStatus s = natsConnection_Connect(&nc, opts);
    if (s != NATS_OK) {
      log->warn("cannot connect to NATS at {}: {}", auth::url_without_credentials(settings.url), last_error(s));
      nc = nullptr;
      return false;
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = 5000;
    jo.PublishAsync.AckHandler = &impl::on_ack;
    jo.PublishAsync.AckHandlerClosure = this;
    s = natsConnection_JetStream(&js, nc, &jo);
    if (s != NATS_OK) {
      log->error("cannot create a JetStream context: {}", last_error(s));
      return false;
    }
    return true;
  }

  // Creates the stream if absent; an existing one is checked, never changed:
  // its limits and placement are the operator's.
  enum class stream_outcome { usable, unusable, retry };
  stream_outcome ensure_stream() {
    std::string const subjects = settings.subject_prefix + ".room.>";
    std::string const republish_to = settings.subject_prefix + ".live.>";
    jsStreamInfo* info = nullptr;
    jsErrCode jerr = static_cast<jsErrCode>(0);
    natsStatus s = js_GetStreamInfo(&info, js, settings.stream.c_str(), nullptr, &jerr);
    if (s == NATS_OK) {
      bool has_subjects = false, has_republish = false;
      jsStreamConfig const* cfg = info->Config;
      for (int i = 0; i < cfg->SubjectsLen; ++i) has_subjects |= subjects == cfg->Subjects[i];
      if (cfg->RePublish != nullptr && cfg->RePublish->Source != nullptr && cfg->RePublish->Destination != nullptr)
        has_republish = subjects == cfg->RePublish->Source && republish_to == cfg->RePublish->Destination &&
                        !cfg->RePublish->HeadersOnly;
      log->info("using existing stream {} ({} messages, max age {} s, max bytes {})", settings.stream,
                info->State.Msgs, cfg->MaxAge / nanos_per_second, cfg->MaxBytes);
      rollup_allowed = cfg->AllowRollup;
      if (!cfg->AllowRollup)
        log->warn("stream {} does not allow rollups: no room snapshots are written, so a room's first join on an "
                  "instance replays the room's whole history. Enable it (nats stream edit {} --allow-rollup); see "
                  "docs/operations.md", settings.stream, settings.stream);
      jsStreamInfo_Destroy(info);
      if (!has_subjects || !has_republish) {
        log->error(
            "stream {} exists but is not shaped for sigstream: it needs subject '{}' and RePublish "
            "'{}' -> '{}' (with bodies). sigstream does not change an existing stream; fix it, or "
            "point --stream/--subject-prefix elsewhere",
            settings.stream, subjects, subjects, republish_to);
        return stream_outcome::unusable;
      }
      return stream_outcome::usable;
    }
    if (s != NATS_NOT_FOUND) {
      log->warn("cannot read stream {}: {}", settings.stream, last_error(s));
      return stream_outcome::retry;
    }
    if (!settings.create_stream) {
      log->error("stream {} does not exist on {}", settings.stream, auth::url_without_credentials(settings.url));
      return stream_outcome::unusable;
    }
    jsStreamConfig cfg;
    jsStreamConfig_Init(&cfg);
    char const* subject_list[] = {subjects.c_str()};
    jsRePublish republish{subjects.c_str(), republish_to.c_str(), false};
    cfg.Name = settings.stream.c_str();
    cfg.Description = "sigstream room events";
    cfg.Subjects = subject_list;
    cfg.SubjectsLen = 1;
    cfg.Storage = js_FileStorage;
    cfg.MaxAge = settings.max_age.count() * nanos_per_second;
    cfg.MaxBytes = settings.max_bytes;
    cfg.Duplicates = settings.duplicate_window.count() * nanos_per_second;
    cfg.AllowDirect = true;
    cfg.AllowRollup = true;
    cfg.RePublish = &republish;
    s = js_AddStream(&info, js, &cfg, nullptr, &jerr);
    if (s != NATS_OK && static_cast<int>(jerr) == jetstream_subject_overlap) {
      log->error(
          "cannot create stream {}: its subjects '{}' overlap with an existing stream (JetStream error {}). "
          "Use that stream's name with --stream, or another --subject-prefix",
          settings.stream, subjects, static_cast<int>(jerr));
      return stream_outcome::unusable;
    }
    if (s != NATS_OK) {
      // Another instance may have created it a moment ago: look again.
      log->warn("cannot create stream {}: {} (jetstream error {})", settings.stream, last_error(s),
                static_cast<int>(jerr));
      return stream_outcome::retry;
    }
    jsStreamInfo_Destroy(info);
    log->info("created stream {} on '{}' (file storage, max age {} s, max bytes {}, republish to '{}')",
              settings.stream, subjects, settings.max_age.count(), settings.max_bytes, republish_to);
    return stream_outcome::usable;
  }
};

event_log::event_log(log_settings settings, std::shared_ptr<spdlog::logger> log) : impl_(new impl) {
  impl_->settings = std::move(settings);
  impl_->log = std::move(log);
  impl_->ack_timer = std::thread([d = impl_.get()] { d->expire_acks(); });
}

event_log::~event_log() {
  close();
  if (impl_->heartbeat_watcher != nullptr) kvWatcher_Destroy(impl_->heartbeat_watcher);
  if (impl_->heartbeats != nullptr) kvStore_Destroy(impl_->heartbeats);
  if (impl_->js != nullptr) jsCtx_Destroy(impl_->js);
  if (impl_->nc != nullptr) natsConnection_Destroy(impl_->nc);
  if (impl_->opts != nullptr) natsOptions_Destroy(impl_->opts);
}

void event_log::close() {
  auto& d = *impl_;
  if (d.closing.exchange(true)) return;
  d.stream_ok = false;
  if (d.nc != nullptr) {
    natsConnection_Close(d.nc);
    std::unique_lock lock(d.closed_mutex);
    if (!d.closed_signal.wait_for(lock, std::chrono::seconds(5), [&] { return d.closed; }))
      d.log->warn("the NATS connection did not report closing within 5 s");
  }
  {
    std::lock_guard lock(d.pending_mutex);
    d.ack_timer_stop = true;
  }
  d.pending_signal.notify_all();
  if (d.ack_timer.joinable()) d.ack_timer.join();
  std::unordered_map<std::string, impl::pending_append> dropped;
  std::lock_guard lock(d.pending_mutex);
  dropped.swap(d.pending);
  d.deadlines.clear();
}

bool event_log::start(std::atomic<bool> const& stop) {
  auto& d = *impl_;
  natsOptions_Create(&d.opts);
  natsOptions_SetURL(d.opts, d.settings.url.c_str());
  if (!d.apply_security()) return false;
  if (!d.settings.client_name.empty()) natsOptions_SetName(d.opts, d.settings.client_name.c_str());
  // Without SendAsap nats.c holds every publish for up to 1 ms to batch writes.
  natsOptions_SetSendAsap(d.opts, d.settings.send_asap);
  // One delivery thread for all live subscriptions instead of one each.
  natsOptions_UseGlobalMessageDelivery(d.opts, true);
  natsOptions_SetMaxReconnect(d.opts, -1);
  natsOptions_SetReconnectWait(d.opts, 500);
  // No publish is held back while reconnecting: an append during an outage
  // fails at once (the client hears `unavailable`) instead of being sent
  // later, after its caller was already told it failed.
  natsOptions_SetReconnectBufSize(d.opts, 1);
  natsOptions_SetTimeout(d.opts, 2000);
  natsOptions_SetDisconnectedCB(d.opts, &impl::on_disconnected, &d);
  natsOptions_SetReconnectedCB(d.opts, &impl::on_reconnected, &d);
  natsOptions_SetClosedCB(d.opts, &impl::on_closed, &d);
  natsOptions_SetErrorHandler(d.opts, &impl::on_async_error, &d);

  auto backoff = std::chrono::milliseconds(200);
  auto wait = [&] {
    for (auto slept = std::chrono::milliseconds(0); slept < backoff && !stop; slept += std::chrono::milliseconds(50))
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
  };
  for (int attempt = 1; !stop && !d.connect_once(); ++attempt) {
    if (d.settings.connect_attempts > 0 && attempt >= d.settings.connect_attempts) return false;
    wait();
  }
  if (stop) return false;
  d.log->info("connected to NATS at {}{}", auth::url_without_credentials(d.settings.url),
              d.uses_tls() ? " over TLS" : "");
  for (;;) {
    if (stop) return false;
    switch (d.ensure_stream()) {
      case impl::stream_outcome::usable: d.stream_ok = true; return true;
      case impl::stream_outcome::unusable: return false;
      case impl::stream_outcome::retry:
        if (d.settings.connect_attempts > 0) return false;
        wait();
        break;
    }
  }
}

bool event_log::ready() const {
  return impl_->stream_ok && impl_->nc != nullptr && natsConnection_Status(impl_->nc) == NATS_CONN_STATUS_CONNECTED;
}

domain::room_subjects event_log::subjects(std::string const& token) const {
  return domain::subjects_for_token(impl_->settings.subject_prefix, token);
}

void event_log::append(std::string const& subject, std::string payload, std::string msg_id,
                       std::function<void(append_result)> done) {
  auto& d = *impl_;
  if (d.js == nullptr || d.closing || natsConnection_Status(d.nc) != NATS_CONN_STATUS_CONNECTED) {
    done(append_result{false, 0, false, "not connected to NATS"});
    return;
  }
  natsMsg* raw = nullptr;
  natsStatus s = natsMsg_Create(&raw, subject.c_str(), nullptr, payload.data(), static_cast<int>(payload.size()));
  if (s == NATS_OK) s = natsMsgHeader_Set(raw, msg_id_header, msg_id.c_str());
  if (s != NATS_OK) {
    natsMsg_Destroy(raw);
    done(append_result{false, 0, false, natsStatus_GetText(s)});
    return;
  }
  d.add_pending(msg_id, std::move(done));
  // No MaxWait: the deadline is kept by expire_acks (see pending_append).
  s = js_PublishMsgAsync(d.js, &raw, nullptr);
  if (s != NATS_OK) {
    natsMsg_Destroy(raw);  // still ours when the call fails
    if (auto failed = d.take_pending(msg_id)) failed(append_result{false, 0, false, natsStatus_GetText(s)});
  }
}

bool event_log::put_snapshot(std::string const& subject, std::string const& payload, std::string const& msg_id) {
  auto& d = *impl_;
  if (d.js == nullptr || !d.rollup_allowed || natsConnection_Status(d.nc) != NATS_CONN_STATUS_CONNECTED) return false;
  natsMsg* raw = nullptr;
  natsStatus s = natsMsg_Create(&raw, subject.c_str(), nullptr, payload.data(), static_cast<int>(payload.size()));
  if (s == NATS_OK) s = natsMsgHeader_Set(raw, msg_id_header, msg_id.c_str());
  // The stream keeps only the newest message of the snapshot subject.
  if (s == NATS_OK) s = natsMsgHeader_Set(raw, "Nats-Rollup", "sub");
  jsPubAck* ack = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  if (s == NATS_OK) s = js_PublishMsg(&ack, d.js, raw, nullptr, &jerr);
  natsMsg_Destroy(raw);
  jsPubAck_Destroy(ack);
  if (s != NATS_OK) d.log->debug("snapshot on {} not stored: {}", subject, last_error(s));
  return s == NATS_OK;
}

std::unique_ptr<live_subscription> event_log::subscribe_live(std::string const& token,
                                                             std::function<void(live_message)> on_message) {
  auto& d = *impl_;
  if (d.nc == nullptr) return nullptr;
  auto* closure = new live_closure{std::move(on_message)};
  natsSubscription* sub = nullptr;
  std::string subject = subjects(token).live;
  natsStatus s = natsConnection_Subscribe(&sub, d.nc, subject.c_str(), &on_live_message, closure);
  if (s != NATS_OK) {
    delete closure;
    d.log->warn("cannot subscribe to {}: {}", subject, natsStatus_GetText(s));
    return nullptr;
  }
  // Generous: a message dropped here becomes a gap and a catch-up read from
  // the stream, which costs far more than the memory of a burst.
  natsSubscription_SetPendingLimits(sub, 1 << 20, 256 << 20);
  natsSubscription_SetOnCompleteCB(sub, &on_subscription_complete, closure);
  return std::make_unique<core_subscription>(sub);
}

bool event_log::flush() {
  return impl_->nc != nullptr && natsConnection_FlushTimeout(impl_->nc, 5000) == NATS_OK;
}

std::optional<stored_message> event_log::last_message(std::string const& subject) {
  auto& d = *impl_;
  if (d.js == nullptr) return std::nullopt;
  natsMsg* raw = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetLastMsg(&raw, d.js, d.settings.stream.c_str(), subject.c_str(), nullptr, &jerr);
  if (s == NATS_NOT_FOUND) return stored_message{};
  if (s != NATS_OK) {
    d.log->warn("cannot read the last message of {}: {}", subject, last_error(s));
    return std::nullopt;
  }
  msg_ptr msg(raw);
  return stored_message{natsMsg_GetSequence(msg.get()),
                        std::string(natsMsg_GetData(msg.get()), static_cast<std::size_t>(natsMsg_GetDataLength(msg.get())))};
}

std::optional<std::uint64_t> event_log::last_seq(std::string const& subject) {
  auto last = last_message(subject);
  if (!last) return std::nullopt;
  return last->seq;
}

std::optional<std::vector<stored_message>> event_log::read(std::string const& filter, std::uint64_t from_seq,
                                                           std::uint64_t to_seq) {
  std::vector<stored_message> out;
  if (from_seq > to_seq) return out;
  std::atomic<bool> never{false};
  scan_end end = scan(filter, scan_start{from_seq, 0}, false, never, [&](stored_message&& m) {
    if (m.seq > to_seq) return false;
    std::uint64_t seq = m.seq;
    out.push_back(std::move(m));
    return seq < to_seq;
  });
  if (end == scan_end::failed) return std::nullopt;
  return out;
}

scan_end event_log::scan(std::string const& filter, scan_start start, bool follow, std::atomic<bool> const& stop,
                         std::function<bool(stored_message&&)> const& on_message,
                         std::function<bool()> const& on_quiet) {
  auto& d = *impl_;
  if (d.js == nullptr) return scan_end::failed;
  // The head when the scan begins bounds a scan that does not follow: a
  // busy room never shows "nothing pending", but it does pass its old head.
  auto head = last_seq(filter);
  if (!head) return scan_end::failed;
  if (!follow && (*head == 0 || (start.time_ms <= 0 && start.seq > *head))) return scan_end::caught_up;

  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = d.settings.stream.c_str();
  so.Ordered = true;
  if (start.time_ms > 0) {
    so.Config.DeliverPolicy = js_DeliverByStartTime;
    so.Config.OptStartTime = start.time_ms * 1'000'000;
  } else if (follow && start.seq > *head) {
    so.Config.DeliverPolicy = js_DeliverNew;  // a start past the end: only what comes next
  } else {
    so.Config.DeliverPolicy = js_DeliverByStartSequence;
    so.Config.OptStartSeq = std::max<std::uint64_t>(start.seq, 1);
  }
  natsSubscription* sub = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_SubscribeSync(&sub, d.js, filter.c_str(), nullptr, &so, &jerr);
  if (s != NATS_OK) {
    d.log->warn("cannot read {}: {}", filter, last_error(s));
    return scan_end::failed;
  }
  std::unique_ptr<natsSubscription, void (*)(natsSubscription*)> guard(sub, [](natsSubscription* p) {
    natsSubscription_Unsubscribe(p);
    natsSubscription_Destroy(p);
  });

  if (!follow && start.time_ms > 0) {
    // Started by time, the consumer may have nothing at all to deliver.
    jsConsumerInfo* ci = nullptr;
    if (natsSubscription_GetConsumerInfo(&ci, sub, nullptr, &jerr) == NATS_OK) {
      bool nothing = ci->NumPending == 0 && ci->Delivered.Consumer == 0;
      jsConsumerInfo_Destroy(ci);
      if (nothing) return scan_end::caught_up;
    }
  }

  constexpr int slice_ms = 200;
  int silent_ms = 0;
  std::uint64_t last = 0;
  // Delivered messages are destroyed in batches: nats.c hands each one to
  // its garbage-collector thread and wakes that thread whenever its list was
  // empty, which one at a time means a thread wake-up per message (a sixth
  // of a long read's time). A batch costs a few wake-ups and ~256 KiB.
  constexpr std::size_t destroy_batch = 256;
  std::vector<msg_ptr> spent;
  spent.reserve(destroy_batch);
  while (!stop.load()) {
    natsMsg* raw = nullptr;
    s = natsSubscription_NextMsg(&raw, sub, slice_ms);
    if (s == NATS_TIMEOUT) {
      silent_ms += slice_ms;
      // Messages are due (we are short of the head), so a long silence
      // means a slow or unreachable server: report it, let the caller retry.
      if (!follow && silent_ms >= read_wait_ms) {
        d.log->warn("reading {} stopped after seq {}: no message for {} ms", filter, last, read_wait_ms);
        return scan_end::failed;
      }
      constexpr int quiet_ms = 10'000;
      if (follow && on_quiet && silent_ms % quiet_ms == 0 && !on_quiet()) return scan_end::stopped;
      continue;
    }
    if (s != NATS_OK) {
      d.log->warn("reading {} stopped after seq {}: {}", filter, last, natsStatus_GetText(s));
      return scan_end::failed;
    }
    silent_ms = 0;
    msg_ptr msg(raw);
    jsMsgMetaData* meta = nullptr;
    if (natsMsg_GetMetaData(&meta, msg.get()) != NATS_OK) continue;
    std::uint64_t seq = meta->Sequence.Stream;
    std::uint64_t pending = meta->NumPending;
    jsMsgMetaData_Destroy(meta);
    last = seq;
    stored_message out{seq, std::string(natsMsg_GetData(msg.get()),
                                        static_cast<std::size_t>(natsMsg_GetDataLength(msg.get())))};
    spent.push_back(std::move(msg));
    if (spent.size() >= destroy_batch) spent.clear();
    if (!on_message(std::move(out))) return scan_end::stopped;
    if (!follow && (pending == 0 || seq >= *head)) return scan_end::caught_up;
  }
  return scan_end::stopped;
}

bool event_log::delete_stream() {
  auto& d = *impl_;
  if (d.js == nullptr) return false;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_DeleteStream(d.js, d.settings.stream.c_str(), nullptr, &jerr);
  if (s == NATS_NOT_FOUND) return true;
  if (s != NATS_OK) {
    d.log->warn("cannot delete stream {}: {} (jetstream error {})", d.settings.stream, last_error(s),
                static_cast<int>(jerr));
    return false;
  }
  d.stream_ok = false;
  d.log->info("deleted stream {}", d.settings.stream);
  return true;
}

namespace {

heartbeat_entry entry_of(kvEntry* e) {
  heartbeat_entry out;
  out.instance = kvEntry_Key(e);
  out.revision = kvEntry_Revision(e);
  out.removed = kvEntry_Operation(e) != kvOp_Put;
  if (!out.removed && kvEntry_Value(e) != nullptr)
    out.value.assign(static_cast<char const*>(kvEntry_Value(e)), static_cast<std::size_t>(kvEntry_ValueLen(e)));
  return out;
}

// A key-value bucket beside the stream, created if absent (one value per
// key, file storage: it survives a NATS restart, as the stream does). ttl 0:
// entries never expire. Null (logged) on error.
kvStore* open_bucket(jsCtx* js, spdlog::logger& log, std::string const& bucket, char const* description,
                     std::chrono::seconds ttl) {
  kvStore* kv = nullptr;
  natsStatus s = js_KeyValue(&kv, js, bucket.c_str());
  if (s == NATS_NOT_FOUND) {
    kvConfig cfg;
    kvConfig_Init(&cfg);
    cfg.Bucket = bucket.c_str();
    cfg.Description = description;
    cfg.History = 1;
    cfg.TTL = static_cast<int64_t>(ttl.count()) * nanos_per_second;
    cfg.StorageType = js_FileStorage;
    s = js_CreateKeyValue(&kv, js, &cfg);
    if (s == NATS_OK) log.info("created bucket {} ({})", bucket, description);
  }
  if (s != NATS_OK) {
    log.warn("cannot open bucket {}: {}", bucket, last_error(s));
    return nullptr;
  }
  return kv;
}

}  // namespace

bool event_log::open_heartbeats(std::chrono::seconds ttl) {
  auto& d = *impl_;
  if (d.js == nullptr) return false;
  if (d.heartbeats == nullptr)
    d.heartbeats = open_bucket(d.js, *d.log, d.settings.stream + "_INSTANCES", "sigstream instance heartbeats", ttl);
  return d.heartbeats != nullptr;
}

std::optional<std::string> event_log::shared_secret(std::string const& key, std::string const& candidate) {
  auto& d = *impl_;
  if (d.js == nullptr) return std::nullopt;
  std::string bucket = d.settings.stream + "_CLUSTER";
  kvStore* kv = open_bucket(d.js, *d.log, bucket, "sigstream cluster settings shared by every instance",
                            std::chrono::seconds(0));
  if (kv == nullptr) return std::nullopt;
  std::optional<std::string> out;
  std::uint64_t revision = 0;
  // Create only if absent: of instances racing here, one value wins and
  // every instance reads that one.
  natsStatus s = kvStore_Create(&revision, kv, key.c_str(), candidate.data(), static_cast<int>(candidate.size()));
  if (s == NATS_OK) {
    d.log->info("stored a new {} in bucket {}", key, bucket);
    out = candidate;
  } else {
    kvEntry* entry = nullptr;
    s = kvStore_Get(&entry, kv, key.c_str());
    if (s == NATS_OK && kvEntry_ValueLen(entry) > 0)
      out = std::string(static_cast<char const*>(kvEntry_Value(entry)), static_cast<std::size_t>(kvEntry_ValueLen(entry)));
    else
      d.log->warn("cannot read {} from bucket {}: {}", key, bucket, last_error(s));
    kvEntry_Destroy(entry);
  }
  kvStore_Destroy(kv);
  return out;
}

bool event_log::put_heartbeat(std::string const& instance, std::string const& value) {
  auto& d = *impl_;
  if (d.heartbeats == nullptr) return false;
  std::uint64_t revision = 0;
  natsStatus s = kvStore_Put(&revision, d.heartbeats, instance.c_str(), value.data(), static_cast<int>(value.size()));
  if (s != NATS_OK) d.log->debug("heartbeat not written: {}", natsStatus_GetText(s));
  return s == NATS_OK;
}

bool event_log::remove_heartbeat(std::string const& instance) {
  auto& d = *impl_;
  return d.heartbeats != nullptr && kvStore_Delete(d.heartbeats, instance.c_str()) == NATS_OK;
}

std::optional<std::vector<heartbeat_entry>> event_log::heartbeats() {
  auto& d = *impl_;
  if (d.heartbeats == nullptr) return std::nullopt;
  kvKeysList keys;
  natsStatus s = kvStore_Keys(&keys, d.heartbeats, nullptr);
  if (s == NATS_NOT_FOUND) return std::vector<heartbeat_entry>{};
  if (s != NATS_OK) {
    d.log->warn("cannot list heartbeats: {}", last_error(s));
    return std::nullopt;
  }
  std::vector<heartbeat_entry> out;
  for (int i = 0; i < keys.Count; ++i) {
    kvEntry* e = nullptr;
    if (kvStore_Get(&e, d.heartbeats, keys.Keys[i]) != NATS_OK) continue;  // gone meanwhile
    out.push_back(entry_of(e));
    kvEntry_Destroy(e);
  }
  kvKeysList_Destroy(&keys);
  return out;
}

std::optional<heartbeat_entry> event_log::next_heartbeat(std::chrono::milliseconds wait) {
  auto& d = *impl_;
  if (d.heartbeats == nullptr) return std::nullopt;
  if (d.heartbeat_watcher == nullptr) {
    natsStatus s = kvStore_WatchAll(&d.heartbeat_watcher, d.heartbeats, nullptr);
    if (s != NATS_OK) {
      d.log->warn("cannot watch heartbeats: {}", last_error(s));
      d.heartbeat_watcher = nullptr;
      return std::nullopt;
    }
  }
  auto deadline = std::chrono::steady_clock::now() + wait;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    kvEntry* e = nullptr;
    natsStatus s = kvWatcher_Next(&e, d.heartbeat_watcher, left.count());
    if (s != NATS_OK) return std::nullopt;  // timeout, or a connection problem the caller sees elsewhere
    if (e == nullptr) continue;             // the marker after the initial values
    heartbeat_entry out = entry_of(e);
    kvEntry_Destroy(e);
    return out;
  }
}

std::optional<std::uint64_t> event_log::stream_last_seq() {
  auto& d = *impl_;
  if (d.js == nullptr) return std::nullopt;
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si, d.js, d.settings.stream.c_str(), nullptr, &jerr);
  if (s != NATS_OK) {
    d.log->warn("cannot read the state of stream {}: {}", d.settings.stream, last_error(s));
    return std::nullopt;
  }
  std::uint64_t last = si->State.LastSeq;
  jsStreamInfo_Destroy(si);
  return last;
}

std::optional<std::vector<subject_count>> event_log::subjects_matching(std::string const& filter) {
  auto& d = *impl_;
  if (d.js == nullptr) return std::nullopt;
  jsOptions o;
  jsOptions_Init(&o);
  o.Stream.Info.SubjectsFilter = filter.c_str();
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si, d.js, d.settings.stream.c_str(), &o, &jerr);
  if (s != NATS_OK) {
    d.log->warn("cannot list the subjects of stream {}: {}", d.settings.stream, last_error(s));
    return std::nullopt;
  }
  std::vector<subject_count> out;
  if (si->State.Subjects != nullptr) {
    out.reserve(static_cast<std::size_t>(si->State.Subjects->Count));
    for (int i = 0; i < si->State.Subjects->Count; ++i)
      out.push_back(subject_count{si->State.Subjects->List[i].Subject, si->State.Subjects->List[i].Msgs});
  }
  jsStreamInfo_Destroy(si);
  return out;
}

}  // namespace sig::nats
