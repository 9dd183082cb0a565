#include "adapters/nats/event_log.hpp"

#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include <thread>

#include "adapters/nats/appender.hpp"
#include "adapters/nats/key_value.hpp"

namespace sig::nats {

std::string heartbeat_bucket(std::string const& stream) { return stream + "_INSTANCES"; }
std::string holdings_bucket(std::string const& stream) { return stream + "_HOLDINGS"; }
std::string cluster_bucket(std::string const& stream) { return stream + "_CLUSTER"; }

event_log::event_log(log_settings settings, std::shared_ptr<spdlog::logger> log)
    : settings_(std::move(settings)),
      conn_(connection_settings{.url = settings_.url,
                                .security = settings_.security,
                                .name = settings_.client_name,
                                .send_asap = settings_.send_asap,
                                .connect_attempts = settings_.connect_attempts},
            std::move(log)),
      reader_(conn_, settings_.stream),
      appender_(std::make_unique<appender>(
          conn_, appender_settings{.max_in_flight = settings_.max_appends_in_flight},
          // Acknowledgements come one at a time on nats.c's delivery thread
          // here; the tools do not need their destroys batched.
          [](natsMsg* m) { natsMsg_Destroy(m); })) {
  ack_timer_ = std::thread([this] { expire_acks(); });
}

event_log::~event_log() {
  close();
  ack_timer_stop_ = true;
  if (ack_timer_.joinable()) ack_timer_.join();
}

void event_log::expire_acks() {
  while (!ack_timer_stop_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    appender_->expire_overdue(std::chrono::steady_clock::now());
  }
}

bool event_log::start(std::atomic<bool> const& stop) {
  if (!conn_.open(stop)) return false;
  if (!appender_->start(true)) return false;
  stream_shape shape{.stream = settings_.stream,
                     .subject_prefix = settings_.subject_prefix,
                     .max_age = settings_.max_age,
                     .max_bytes = settings_.max_bytes,
                     .duplicate_window = settings_.duplicate_window,
                     .replicas = settings_.replicas,
                     .create = settings_.create_stream,
                     .advise = settings_.advise};
  auto backoff = std::chrono::milliseconds(200);
  for (;;) {
    if (stop) return false;
    stream_features features;
    switch (ensure_stream(conn_, shape, features)) {
      case stream_check::usable:
        use_features(features);
        stream_ok_ = true;
        return true;
      case stream_check::unusable: return false;
      case stream_check::retry:
        if (settings_.connect_attempts > 0) return false;
        for (auto slept = std::chrono::milliseconds(0); slept < backoff && !stop; slept += std::chrono::milliseconds(50))
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        backoff = std::min(backoff * 2, std::chrono::milliseconds(5000));
        break;
    }
  }
}

std::optional<stream_features> event_log::read_features() {
  if (!conn_.connected()) return std::nullopt;
  return read_stream_features(conn_, settings_.stream);
}

bool event_log::use_features(stream_features const& features) {
  bool was_direct = reader_.direct_get(), was_rollup = rollup_allowed_;
  int was_replicas = stream_replicas_.exchange(features.replicas);
  clustered_ = features.clustered;
  rollup_allowed_ = features.rollup;
  reader_.use_stream_shape(features.direct, features.replicas > 1);
  return was_replicas != features.replicas || was_direct != reader_.direct_get() || was_rollup != features.rollup;
}

bool event_log::ready() const { return stream_ok_ && conn_.connected(); }

void event_log::close() {
  stream_ok_ = false;
  conn_.close();
  appender_->fail_all("closing");
}

domain::room_subjects event_log::subjects(std::string const& token) const {
  return domain::subjects_for_token(settings_.subject_prefix, token);
}

void event_log::append(std::string const& subject, std::string payload, std::string msg_id,
                       std::function<void(append_result)> done) {
  appender_->append(subject, payload, msg_id, service::append_kind::membership, std::move(done));
}

bool event_log::put_snapshot(std::string const& subject, std::string const& payload, std::string const& msg_id) {
  if (!rollup_allowed_) return false;
  return reader_.put_rollup(subject, payload, msg_id);
}

bool event_log::delete_stream() {
  bool gone = reader_.delete_stream();
  if (gone) stream_ok_ = false;
  return gone;
}

std::unique_ptr<service::kv_store> event_log::open_heartbeats(std::chrono::seconds ttl) {
  return kv_bucket::open(conn_, heartbeat_bucket(settings_.stream), "sigstream instance heartbeats", ttl,
                         settings_.replicas);
}

std::unique_ptr<service::kv_store> event_log::open_holdings(std::chrono::seconds ttl) {
  return kv_bucket::open(conn_, holdings_bucket(settings_.stream), "rooms each sigstream instance follows", ttl,
                         settings_.replicas);
}

std::optional<std::vector<heartbeat_entry>> event_log::heartbeats() {
  auto bucket = kv_bucket::open(conn_, heartbeat_bucket(settings_.stream), "sigstream instance heartbeats",
                                std::chrono::seconds(60), settings_.replicas);
  if (!bucket) return std::nullopt;
  auto entries = bucket->entries(">");
  if (!entries) return std::nullopt;
  std::vector<heartbeat_entry> out;
  for (auto& e : *entries) out.push_back(heartbeat_entry{e.key, std::move(e.value), e.revision, e.removed, e.written_ms});
  return out;
}

std::optional<std::string> event_log::shared_secret(std::string const& key, std::string const& candidate) {
  auto bucket = kv_bucket::open(conn_, cluster_bucket(settings_.stream),
                                "sigstream cluster settings shared by every instance", std::chrono::seconds(0),
                                settings_.replicas);
  if (!bucket) return std::nullopt;
  // Create only if absent: of instances racing here, one value wins and
  // every instance reads that one.
  if (bucket->create(key, candidate)) {
    conn_.log().info("stored a new {} in bucket {}", key, bucket->name());
    return candidate;
  }
  auto stored = bucket->get(key);
  if (!stored || stored->empty()) conn_.log().warn("cannot read {} from bucket {}", key, bucket->name());
  if (stored && stored->empty()) return std::nullopt;
  return stored;
}

}  // namespace sig::nats
