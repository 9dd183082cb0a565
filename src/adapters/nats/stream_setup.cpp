#include "adapters/nats/stream_setup.hpp"

#include <algorithm>
#include <cstdlib>
#include <string>
#include <string_view>

#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include "adapters/nats/connection.hpp"
#include "adapters/nats/nats_errors.hpp"
#include "auth/url_credentials.hpp"

namespace sig::nats {

namespace {
constexpr std::int64_t nanos_per_second = 1'000'000'000;

// What fails here is tried again (stream_check::retry), unless the
// connection is closing under it (the instance is stopping).
void fail(connection& conn, std::error_code ec, std::string_view what) {
  conn.log().log(conn.closing() ? spdlog::level::debug : spdlog::level::warn, "{}: {}", what, with_nats_trace(ec));
}

// The NATS servers the connection knows of: those it was given, and those
// the cluster announced since (INFO connect_urls). 0 if unknown.
int known_servers(connection& conn) {
  char** servers = nullptr;
  int count = 0;
  if (conn.handle() == nullptr || natsConnection_GetServers(conn.handle(), &servers, &count) != NATS_OK) return 0;
  for (int i = 0; i < count; ++i) std::free(servers[i]);
  std::free(servers);
  return count;
}

// A stream on fewer copies than the NATS cluster could keep (up to 3) is
// lost with the node that holds it, and every join and signal stops with it.
void warn_if_underreplicated(connection& conn, std::string const& stream, int replicas) {
  int servers = known_servers(conn);
  if (servers <= 1 || replicas >= std::min(servers, 3)) return;
  conn.log().warn("stream {} keeps {} replica{} on a NATS cluster of {} servers: losing the node that holds {} "
                  "loses the room history and stops every join and signal. Start the first instance with "
                  "--stream-replicas {} (or raise an existing stream's; docs/operations.md, \"A NATS cluster\")",
                  stream, replicas, replicas == 1 ? "" : "s", servers, replicas == 1 ? "it" : "them",
                  std::min(servers, 3));
}
stream_features features_of(jsStreamInfo const& info) {
  jsStreamConfig const& cfg = *info.Config;
  // A lone server's stream info has no cluster; a cluster's names it.
  bool clustered = info.Cluster != nullptr && info.Cluster->Name != nullptr && info.Cluster->Name[0] != '\0';
  return stream_features{.rollup = cfg.AllowRollup,
                         .direct = cfg.AllowDirect,
                         .replicas = static_cast<int>(cfg.Replicas),
                         .clustered = clustered};
}
}  // namespace

std::optional<stream_features> read_stream_features(connection& conn, std::string const& stream) {
  if (conn.jetstream() == nullptr) return std::nullopt;
  jsStreamInfo* info = nullptr;
  jsErrCode jerr = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&info, conn.jetstream(), stream.c_str(), nullptr, &jerr);
  if (s != NATS_OK) {
    fail(conn, nats_error(s, jerr), "cannot read the configuration of stream " + stream);
    return std::nullopt;
  }
  std::optional<stream_features> out;
  if (info->Config != nullptr) out = features_of(*info);
  jsStreamInfo_Destroy(info);
  return out;
}

stream_check ensure_stream(connection& conn, stream_shape const& settings, stream_features& features) {
  auto* js = conn.jetstream();
  auto* log = &conn.log();
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
    if (settings.advise)
      log->info("using existing stream {} ({} messages, max age {} s, max bytes {})", settings.stream,
                info->State.Msgs, cfg->MaxAge / nanos_per_second, cfg->MaxBytes);
    if (settings.advise && cfg->Replicas < settings.replicas)
      log->warn("stream {} keeps {} replica{} and --stream-replicas asks for {}: sigstream does not change an "
                "existing stream; raise it with `nats stream edit {} --replicas {}` (docs/operations.md)",
                settings.stream, cfg->Replicas, cfg->Replicas == 1 ? "" : "s", settings.replicas, settings.stream,
                settings.replicas);
    if (settings.advise) warn_if_underreplicated(conn, settings.stream, static_cast<int>(cfg->Replicas));
    features = features_of(*info);
    if (settings.advise && !cfg->AllowRollup)
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
      return stream_check::unusable;
    }
    return stream_check::usable;
  }
  if (s != NATS_NOT_FOUND) {
    fail(conn, nats_error(s, jerr), "cannot read stream " + settings.stream);
    return stream_check::retry;
  }
  if (!settings.create) {
    log->error("stream {} does not exist on {}", settings.stream, auth::url_without_credentials(conn.settings().url));
    return stream_check::unusable;
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
  cfg.Replicas = std::max(settings.replicas, 1);
  cfg.MaxAge = settings.max_age.count() * nanos_per_second;
  cfg.MaxBytes = settings.max_bytes;
  cfg.Duplicates = settings.duplicate_window.count() * nanos_per_second;
  cfg.AllowDirect = true;
  cfg.AllowRollup = true;
  cfg.RePublish = &republish;
  s = js_AddStream(&info, js, &cfg, nullptr, &jerr);
  std::error_code const not_created = nats_error(s, jerr);
  if (not_created == jetstream_error(JSStreamSubjectOverlapErr)) {
    // Instances started together race to create the stream: the loser's
    // create can be refused for overlapping the winner's. Then the stream
    // by this name is there now, and is checked as an existing one.
    jsStreamInfo* created = nullptr;
    if (js_GetStreamInfo(&created, js, settings.stream.c_str(), nullptr, nullptr) == NATS_OK) {
      jsStreamInfo_Destroy(created);
      log->info("stream {} was created by another instance meanwhile", settings.stream);
      return ensure_stream(conn, settings, features);
    }
    log->error(
        "cannot create stream {}: its subjects '{}' overlap with an existing stream (JetStream error {}). "
        "Use that stream's name with --stream, or another --subject-prefix",
        settings.stream, subjects, not_created.value());
    return stream_check::unusable;
  }
  if (not_created) {
    // Another instance may have created it a moment ago: look again.
    fail(conn, not_created, "cannot create stream " + settings.stream);
    return stream_check::retry;
  }
  features = features_of(*info);
  jsStreamInfo_Destroy(info);
  log->info("created stream {} on '{}' (file storage, {} replica{}, max age {} s, max bytes {}, republish to '{}')",
            settings.stream, subjects, cfg.Replicas, cfg.Replicas == 1 ? "" : "s", settings.max_age.count(),
            settings.max_bytes, republish_to);
  if (settings.advise) warn_if_underreplicated(conn, settings.stream, static_cast<int>(cfg.Replicas));
  return stream_check::usable;
}

}  // namespace sig::nats
