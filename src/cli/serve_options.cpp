#include "cli/serve_options.hpp"

namespace sig::cli {

void declare_serve_options(options& opts, app::instance_settings& s) {
  // Declared in the groups --help shows, in this order.
  opts.group("Network");
  opts.add_string("listen", &s.listen, "Address and port for WebSocket and HTTP (HOST:PORT).");
  opts.add_string("instance-id", &s.instance_id, "This instance's id, in logs and events (default: HOSTNAME-PID).");
  opts.add_string("web-root", &s.web_root,
                  "Directory of static files served on the same port (read once at start-up). Default: the "
                  "checkout's web/ when the binary runs from a build directory; otherwise none.");
  opts.group("NATS (the event log)");
  opts.add_string("nats-url", &s.nats_url,
                  "NATS server with JetStream enabled, or the servers of a JetStream cluster, comma-separated "
                  "(nats://a:4222,nats://b:4222,nats://c:4222): each connection moves to another when its own goes.");
  declare_nats_security(opts, &s.nats_security);
  opts.add_string("stream", &s.stream, "JetStream stream holding every room's events; created if absent, never changed if present.");
  opts.add_string("subject-prefix", &s.subject_prefix, "Subject prefix: a room's events go to PREFIX.room.<room token>.e, live copies to PREFIX.live.>.");
  opts.add_duration("retention-max-age", &s.retention_max_age, "History kept when the stream is created (0: forever).");
  opts.add_size("retention-max-bytes", &s.retention_max_bytes, "Stream size limit when the stream is created (-1: none).");
  opts.add_flag("nats-send-asap", &s.nats_send_asap,
                "For the read and liveness NATS connections: write each request at once instead of batching writes "
                "for up to 1 ms. The data connection (appends, live feeds) always writes once per I/O loop turn.");
  opts.add_duration("duplicate-window", &s.duplicate_window, "JetStream dedup window for retried appends, when the stream is created.");
  opts.add_int("stream-replicas", &s.stream_replicas,
               "Copies of the stream and of sigstream's key-value buckets in a JetStream cluster (3 or 5), when "
               "they are created; an existing stream keeps its own (a warning says when it has fewer).");
  opts.add_duration("stream-check-interval", &s.stream_check_interval,
                    "How often the stream's configuration is read again, so that raising a running stream's replicas "
                    "moves this instance's reads to the stream's leader without a restart.");
  opts.group("Redis (the presence cache)");
  opts.add_string("redis-url", &s.redis_url,
                  "Redis for the presence cache (redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]); empty runs without it "
                  "(joins replay the stream).");
  opts.add_string("redis-user", &s.redis_user, "Redis ACL user (with --redis-password).");
  opts.add_string("redis-password", &s.redis_password,
                  "Redis password (AUTH); overrides the URL's. Prefer the environment variable.");
  opts.add_flag("redis-tls", &s.redis_tls.enabled, "Connect to Redis over TLS (a rediss:// URL does too).");
  opts.add_string("redis-tls-ca", &s.redis_tls.ca_file,
                  "CA file (PEM) that signed Redis's certificate; turns TLS on.");
  opts.add_string("redis-tls-cert", &s.redis_tls.cert_file,
                  "Client certificate (PEM) for a Redis that verifies clients (tls-auth-clients), with --redis-tls-key.");
  opts.add_string("redis-tls-key", &s.redis_tls.key_file, "Private key (PEM) of --redis-tls-cert.");
  opts.group("Security");
  opts.add_string("auth-keys", &s.auth_keys,
                  "Join keys KID:SECRET,... (HMAC-SHA256): every join needs a JWT (HS256) signed with one of them; the "
                  "first signs (sigstream token). Empty: anyone can join any room. Prefer the environment variable.");
  opts.add_string("allowed-origins", &s.allowed_origins,
                  "Comma-separated browser origins (https://app.example.com) allowed to open WebSockets; others get "
                  "403. Empty: any origin (a warning when join keys are off too).");
  opts.add_string("trusted-proxies", &s.trusted_proxies,
                  "Comma-separated addresses or networks (ADDRESS/PREFIX) of proxies whose X-Forwarded-For names "
                  "the client (HAProxy in front); from anyone else the header is ignored.");
  opts.group("Limits");
  opts.add_size("max-frame-bytes", &s.max_frame_bytes, "Largest WebSocket message; a larger one closes the connection with 1009.");
  opts.add_size("max-meta-bytes", &s.max_meta_bytes, "Largest `meta` of a join, serialized (too-large).");
  opts.add_size("max-data-bytes", &s.max_data_bytes, "Largest `data` of a signal, serialized (too-large).");
  opts.add_duration("idle-timeout", &s.idle_timeout, "A connection silent this long is closed; pings go out at half of it.");
  opts.add_int("write-queue-frames", &s.write_queue_frames, "Frames queued to one client before it is closed as a slow consumer (1013).");
  opts.add_size("write-queue-bytes", &s.write_queue_bytes, "Bytes queued to one client before it is closed as a slow consumer (1013).");
  opts.add_int("max-connections", &s.max_connections, "WebSocket connections this instance holds at most; more get 503.");
  opts.add_int("max-room-peers", &s.max_room_peers, "Members a room may hold; more joins get room-full.");
  opts.add_flag("early-first-join", &s.early_first_join,
                "Append a room's first join on this instance right behind the reads that rebuild the room, instead "
                "of after them: one round trip to NATS instead of two. Only on a lone nats-server (a JetStream "
                "cluster always waits) and while no other room is being rebuilt here; a full room may then take one "
                "more member per instance that starts following it.");
  opts.add_duration("join-timeout", &s.join_timeout, "A connection that has not joined a room this long after opening is closed (1008).");
  opts.add_int("signal-rate", &s.signal_rate,
               "Signals per second a connection may send (token bucket); over it: rate-limited, and a client that "
               "keeps going (20 refusals in a row) is closed with 1008.");
  opts.add_int("signal-burst", &s.signal_burst, "Signals a connection may send at once, saved up at --signal-rate.");
  opts.add_int("join-rate", &s.join_rate,
               "Joins per second from one client address (token bucket, per instance); over it: rate-limited "
               "(0: no limit).");
  opts.add_int("join-burst", &s.join_burst, "Joins one client address may make at once, saved up at --join-rate.");
  opts.group("Resume");
  opts.add_flag("resume", &s.resume, "Issue resume tokens and keep a peer whose connection dropped for --resume-grace.");
  opts.add_string("resume-secret", &s.resume_secret,
                  "Secret that signs resume tokens; every instance needs the same. Empty: a random one is made once "
                  "and shared through NATS (bucket <stream>_CLUSTER). Prefer the environment variable.");
  opts.add_duration("resume-grace", &s.resume_grace,
                    "How long a peer whose connection dropped stays in its room, able to resume; then it leaves (expired).");
  opts.add_duration("resume-token-lifetime", &s.resume_token_lifetime,
                    "How long a resume token is good for after its connection's join or last resume.");
  opts.group("Liveness and shutdown");
  opts.add_duration("room-linger", &s.room_linger, "How long an instance keeps following a room after its last local peer left.");
  opts.add_duration("shutdown-grace", &s.shutdown_grace,
                    "On SIGTERM, how long to wait for clients (told to reconnect elsewhere, 1012) to resume on other "
                    "instances; peers still here then leave (expired).");
  opts.add_duration("heartbeat-interval", &s.heartbeat_interval, "How often this instance writes its heartbeat.");
  opts.add_duration("instance-timeout", &s.instance_timeout,
                    "An instance whose heartbeat stands still this long is taken for dead, and its peers leave with "
                    "reason expired. Use the same value on every instance.");
  opts.group("Operators: admin API and logs");
  opts.add_string("admin-token", &s.admin_token,
                  "Bearer token of the admin API (/admin/rooms...); empty: the admin API is off. Prefer the "
                  "environment variable: a flag shows in the process list.");
  opts.add_string("admin-listen", &s.admin_listen,
                  "Separate address (HOST:PORT, e.g. a private interface) for the admin API and page and /metrics; "
                  "they are then not served on --listen. Empty: everything on --listen.");
  opts.add_flag("admin-redact", &s.admin_redact, "Mask IP addresses (SDP, ICE candidates, meta) in admin API answers.");
  opts.add_int("admin-workers", &s.admin_workers,
               "Admin API requests served at once (a followed history holds one until its client goes).");
  opts.add_string("log-level", &s.log_level, "trace, debug, info, warn, error or off.");
  opts.group("Tuning");
  opts.add_int("threads", &s.threads,
               "I/O threads (0: one per CPU core). One thread runs sessions, rooms and the NATS data connection "
               "with no hand-off between threads; more add hand-offs (docs/threading.md).");
  opts.add_int("max-appends-in-flight", &s.max_appends_in_flight,
               "Joins and signals waiting for JetStream's acknowledgement at once; past it they are answered "
               "`unavailable` at once instead of queueing (leaves and resumes are never refused for load).");
  opts.add_duration("max-append-delay", &s.max_append_delay,
                    "Joins and signals are answered `unavailable` at once while the oldest append has waited this long "
                    "for JetStream's acknowledgement: NATS, or this instance's reading of it, is behind, and taking "
                    "more would only lengthen every peer's wait (0: no such limit).");
  opts.add_int("sync-workers", &s.sync_workers,
               "Threads for blocking NATS work (room rebuilds that replay events, catch-ups); they wait on the "
               "network, not the CPU.");
  opts.add_int("snapshot-every", &s.snapshot_every,
               "Write a room's membership snapshot to the stream every this many events of the room, so a room is "
               "rebuilt from at most this many events whatever its age (0: never).");
  opts.group("Testing only: fault injection (never in production)", /*hidden=*/true);
  opts.add_int("fault-drop-live-every", &s.fault_drop_live_every,
               "Testing only: drop every Nth live message to exercise gap recovery (0: off).");
  opts.add_int("fault-delay-live-every", &s.fault_delay_live_every,
               "Testing only: hold every Nth live message for 3 ms, so the feed arrives out of order (0: off).");
  opts.add_int("fault-nats-receive-buffer", &s.fault_nats_receive_buffer,
               "Testing only: the receive buffer (SO_RCVBUF, bytes) of the data connection's NATS socket, so small "
               "that a TLS record can never wait in it whole (0: the kernel's).");
}

}  // namespace sig::cli
