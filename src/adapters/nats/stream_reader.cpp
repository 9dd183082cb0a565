#include "adapters/nats/stream_reader.hpp"

#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <memory>
#include <string>
#include <string_view>

#include "adapters/nats/connection.hpp"
#include "adapters/nats/nats_errors.hpp"

namespace sig::nats {

namespace {

constexpr char msg_id_header[] = "Nats-Msg-Id";
constexpr int read_wait_ms = 5000;
// A replicated stream's reader asks for another consumer after this long
// without a message short of the head.
constexpr int stall_ms = 1000;

struct msg_deleter {
  void operator()(natsMsg* m) const { natsMsg_Destroy(m); }
};
using msg_ptr = std::unique_ptr<natsMsg, msg_deleter>;

void drop_subscription(natsSubscription* sub) {
  natsSubscription_Unsubscribe(sub);
  natsSubscription_Destroy(sub);
}

// Every read here is retried by its caller (a room rebuild, a history
// request). A connection closed or lost under it has been told of once, by
// the connection itself (or is our own close): quiet. Anything else is
// worth a look.
void fail(connection& conn, std::error_code ec, std::string_view what) {
  auto level = conn.closing() || connection_gone(ec) ? spdlog::level::debug : spdlog::level::warn;
  conn.log().log(level, "{}: {}", what, with_nats_trace(ec));
}

}  // namespace

bool stream_reader::put_rollup(std::string const& subject, std::string const& payload, std::string const& msg_id) {
  if (conn_.jetstream() == nullptr || !conn_.connected()) return false;
  natsMsg* raw = nullptr;
  natsStatus s = natsMsg_Create(&raw, subject.c_str(), nullptr, payload.data(), static_cast<int>(payload.size()));
  if (s == NATS_OK) s = natsMsgHeader_Set(raw, msg_id_header, msg_id.c_str());
  // The stream keeps only the newest message of the snapshot subject.
  if (s == NATS_OK) s = natsMsgHeader_Set(raw, "Nats-Rollup", "sub");
  jsPubAck* ack = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  if (s == NATS_OK) s = js_PublishMsg(&ack, conn_.jetstream(), raw, nullptr, &jerr);
  natsMsg_Destroy(raw);
  jsPubAck_Destroy(ack);
  if (s != NATS_OK) fail(conn_, nats_error(s, jerr), "snapshot on " + subject + " not stored");
  return s == NATS_OK;
}

bool stream_reader::flush() {
  return conn_.handle() != nullptr && natsConnection_FlushTimeout(conn_.handle(), 5000) == NATS_OK;
}

std::optional<stored_message> newest_message(connection& conn, std::string const& stream, std::string const& subject,
                                             bool direct) {
  if (conn.jetstream() == nullptr) return std::nullopt;
  natsMsg* raw = nullptr;
  natsStatus s;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  if (direct) {
    jsDirectGetMsgOptions o;
    jsDirectGetMsgOptions_Init(&o);
    o.LastBySubject = subject.c_str();
    s = js_DirectGetMsg(&raw, conn.jetstream(), stream.c_str(), nullptr, &o);
  } else {
    s = js_GetLastMsg(&raw, conn.jetstream(), stream.c_str(), subject.c_str(), nullptr, &jerr);
  }
  if (s == NATS_NOT_FOUND) return stored_message{};
  if (s != NATS_OK) {
    fail(conn, nats_error(s, jerr), "cannot read the last message of " + subject);
    return std::nullopt;
  }
  msg_ptr msg(raw);
  return stored_message{natsMsg_GetSequence(msg.get()),
                        std::string(natsMsg_GetData(msg.get()), static_cast<std::size_t>(natsMsg_GetDataLength(msg.get())))};
}

std::optional<stored_message> stream_reader::last_message(std::string const& subject) {
  return newest_message(conn_, stream_, subject, direct_);
}

std::optional<std::uint64_t> stream_reader::last_seq(std::string const& subject) {
  auto last = last_message(subject);
  if (!last) return std::nullopt;
  return last->seq;
}

std::optional<std::vector<stored_message>> stream_reader::read(std::string const& filter, std::uint64_t from_seq,
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

stream_reader::subscription stream_reader::open_consumer(std::string const& filter, scan_start from,
                                                        bool only_new) {
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = stream_.c_str();
  so.Ordered = true;
  if (from.time_ms > 0) {
    so.Config.DeliverPolicy = js_DeliverByStartTime;
    so.Config.OptStartTime = from.time_ms * 1'000'000;
  } else if (only_new) {
    so.Config.DeliverPolicy = js_DeliverNew;
  } else {
    so.Config.DeliverPolicy = js_DeliverByStartSequence;
    so.Config.OptStartSeq = std::max<std::uint64_t>(from.seq, 1);
  }
  natsSubscription* raw = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_SubscribeSync(&raw, conn_.jetstream(), filter.c_str(), nullptr, &so, &jerr);
  if (s != NATS_OK) {
    fail(conn_, nats_error(s, jerr), "cannot read " + filter);
    return subscription(nullptr, drop_subscription);
  }
  return subscription(raw, drop_subscription);
}

scan_end stream_reader::scan(std::string const& filter, scan_start start, bool follow, std::atomic<bool> const& stop,
                         std::function<bool(stored_message&&)> const& on_message,
                         std::function<bool()> const& on_quiet) {
  if (conn_.jetstream() == nullptr) return scan_end::failed;
  // The head when the scan begins bounds a scan that does not follow: a
  // busy room never shows "nothing pending", but it does pass its old head.
  auto head = last_seq(filter);
  if (!head) return scan_end::failed;
  if (!follow && (*head == 0 || (start.time_ms <= 0 && start.seq > *head))) return scan_end::caught_up;

  // A follow that starts past the end takes only what comes next.
  subscription guard = open_consumer(filter, start, follow && start.seq > *head);
  if (!guard) return scan_end::failed;

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
    natsStatus s = natsSubscription_NextMsg(&raw, guard.get(), slice_ms);
    if (s == NATS_TIMEOUT) {
      silent_ms += slice_ms;
      // Short of the head on a replicated stream, a silent consumer most
      // likely sits on a replica that is catching up (after a restart it
      // can take longer than the wait below): read on from another one.
      if (!follow && replicated_ && silent_ms % stall_ms == 0 && silent_ms < read_wait_ms) {
        conn_.log().debug("reading {}: no message for {} ms short of seq {}; reading on through another consumer",
                          filter, silent_ms, *head);
        scan_start rest = last > 0 ? scan_start{last + 1, 0} : start;
        if (auto again = open_consumer(filter, rest, false)) {
          spent.clear();  // before their subscription goes
          guard = std::move(again);
        }
        continue;
      }
      // Messages are due (we are short of the head), so a long silence
      // means a slow or unreachable server: report it, let the caller retry.
      if (!follow && silent_ms >= read_wait_ms) {
        conn_.log().warn("reading {} stopped after seq {}: no message for {} ms", filter, last, read_wait_ms);
        return scan_end::failed;
      }
      constexpr int quiet_ms = 10'000;
      if (follow && on_quiet && silent_ms % quiet_ms == 0 && !on_quiet()) return scan_end::stopped;
      continue;
    }
    if (s != NATS_OK) {
      fail(conn_, nats_error(s), "reading " + filter + " stopped after seq " + std::to_string(last));
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
    if (!follow && ((pending == 0 && !replicated_) || seq >= *head)) return scan_end::caught_up;
  }
  return scan_end::stopped;
}

bool stream_reader::delete_stream() {
  if (conn_.jetstream() == nullptr) return false;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_DeleteStream(conn_.jetstream(), stream_.c_str(), nullptr, &jerr);
  if (s == NATS_NOT_FOUND) return true;
  if (s != NATS_OK) {
    fail(conn_, nats_error(s, jerr), "cannot delete stream " + stream_);
    return false;
  }
  conn_.log().info("deleted stream {}", stream_);
  return true;
}

namespace {
struct stream_info_deleter {
  void operator()(jsStreamInfo* si) const { jsStreamInfo_Destroy(si); }
};
using stream_info_ptr = std::unique_ptr<jsStreamInfo, stream_info_deleter>;

// The stream's state and configuration; null (logged) on error.
stream_info_ptr read_stream_info(connection& conn, std::string const& stream) {
  if (conn.jetstream() == nullptr) return nullptr;
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si, conn.jetstream(), stream.c_str(), nullptr, &jerr);
  if (s != NATS_OK) {
    fail(conn, nats_error(s, jerr), "cannot read the state of stream " + stream);
    return nullptr;
  }
  return stream_info_ptr(si);
}
}  // namespace

std::optional<std::uint64_t> stream_reader::stream_last_seq() {
  auto si = read_stream_info(conn_, stream_);
  if (!si) return std::nullopt;
  return si->State.LastSeq;
}

std::optional<stream_reader::placement> stream_reader::stream_placement() {
  auto si = read_stream_info(conn_, stream_);
  if (!si) return std::nullopt;
  placement out;
  out.replicas = si->Config != nullptr ? si->Config->Replicas : 1;
  if (auto const* c = si->Cluster; c != nullptr) {
    out.cluster = c->Name != nullptr ? c->Name : "";
    out.leader = c->Leader != nullptr ? c->Leader : "";
    for (int i = 0; i < c->ReplicasLen; ++i) {
      auto const* r = c->Replicas[i];
      out.followers.push_back(replica{r->Name != nullptr ? r->Name : "?", r->Current, r->Offline, r->Lag});
    }
  }
  return out;
}

std::optional<std::vector<subject_count>> stream_reader::subjects_matching(std::string const& filter) {
  if (conn_.jetstream() == nullptr) return std::nullopt;
  jsOptions o;
  jsOptions_Init(&o);
  o.Stream.Info.SubjectsFilter = filter.c_str();
  jsStreamInfo* si = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&si, conn_.jetstream(), stream_.c_str(), &o, &jerr);
  if (s != NATS_OK) {
    fail(conn_, nats_error(s, jerr), "cannot list the subjects of stream " + stream_);
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
