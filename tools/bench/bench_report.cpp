// The report of `sigstream-bench`: a text summary for people and JSON with
// every figure for tools.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "bench/bench_results.hpp"
#include "protocol/messages.hpp"

namespace sig::bench {

namespace {

// --- Text -------------------------------------------------------------------

template <typename... Args>
void add(std::string& out, fmt::format_string<Args...> format, Args&&... args) {
  fmt::format_to(std::back_inserter(out), format, std::forward<Args>(args)...);
}

std::string ms(double value) { return fmt::format("{:.2f}", value); }

std::string join_counts(std::map<std::string, std::uint64_t> const& values) {
  std::string out;
  for (auto const& [key, value] : values) out += fmt::format("{}{}={}", out.empty() ? "" : ", ", key, value);
  return out.empty() ? "-" : out;
}

std::string rate_text(double rate) { return fmt::format("{:.0f}", rate); }

void latency_row(std::string& out, std::string const& label, latency_summary const& l) {
  fmt::format_to(std::back_inserter(out), "  {:<34} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8}\n", label, l.count,
                 ms(l.p50_ms), ms(l.p90_ms), ms(l.p99_ms), ms(l.max_ms), ms(l.mean_ms));
}

void text_steps(std::string& out, std::vector<rate_step> const& steps) {
  fmt::format_to(std::back_inserter(out), "  {:<9} {:>7} {:>8} {:>8} {:>6} {:>6} {:>5} {:>8} {:>8} {:>8} {:>9} {:>9}  {}\n",
                 "kind", "rate/s", "sent", "received", "late", "lost", "err", "p50 ms", "p90 ms", "p99 ms", "max ms",
                 "drain ms", "verdict");
  for (auto const& s : steps)
    fmt::format_to(std::back_inserter(out), "  {:<9} {:>7} {:>8} {:>8} {:>6} {:>6} {:>5} {:>8} {:>8} {:>8} {:>9} {:>9.0f}  {}\n",
                   s.kind, rate_text(s.rate), s.sent, s.received, s.late, s.lost, s.errors, ms(s.latency.p50_ms),
                   ms(s.latency.p90_ms), ms(s.latency.p99_ms), ms(s.latency.max_ms), s.drain_ms, s.verdict);
}

// What the ledger knows of each step: acknowledged, refused, delivered in
// the end (late ones included), and what must stay 0.
void text_ledger(std::string& out, std::vector<rate_step> const& steps) {
  fmt::format_to(std::back_inserter(out), "  {:<9} {:>7} {:>8} {:>8} {:>8} {:>9} {:>10} {:>10} {:>10} {:>6} {:>7} {:>9}\n",
                 "kind", "rate/s", "sent", "acked", "refused", "delivered", "acked+lost", "refused+dl", "unanswered",
                 "dups", "unconf", "unconf+dl");
  for (auto const& s : steps) {
    if (!s.ledger) continue;
    fmt::format_to(std::back_inserter(out), "  {:<9} {:>7} {:>8} {:>8} {:>8} {:>9} {:>10} {:>10} {:>10} {:>6} {:>7} {:>9}\n",
                   s.kind, rate_text(s.rate), s.sent, s.acked, s.refused, s.delivered, s.lost_acknowledged,
                   s.refused_but_delivered, s.unanswered_undelivered, s.duplicates, s.unconfirmed,
                   s.unconfirmed_delivered);
  }
}

void text_cpu(std::string& out, std::vector<rate_step> const& steps) {
  std::vector<std::string> names;
  for (auto const& s : steps)
    for (auto const& c : s.cpu)
      if (std::find(names.begin(), names.end(), c.name) == names.end()) names.push_back(c.name);
  if (names.empty()) {
    out += "  (no server pids given: not measured)\n";
    return;
  }
  fmt::format_to(std::back_inserter(out), "  {:<9} {:>7}", "kind", "rate/s");
  for (auto const& n : names) fmt::format_to(std::back_inserter(out), " {:>8}", n);
  fmt::format_to(std::back_inserter(out), " {:>8} {:>8}\n", "servers", "bench");
  for (auto const& s : steps) {
    fmt::format_to(std::back_inserter(out), "  {:<9} {:>7}", s.kind, rate_text(s.rate));
    for (auto const& n : names) {
      auto it = std::find_if(s.cpu.begin(), s.cpu.end(), [&](auto const& c) { return c.name == n; });
      fmt::format_to(std::back_inserter(out), " {:>8.1f}", it == s.cpu.end() ? 0.0 : it->us_per_signal);
    }
    fmt::format_to(std::back_inserter(out), " {:>8.1f} {:>8.1f}\n", s.servers_us_per_signal, s.bench_us_per_signal);
  }
  out += "  context switches per delivered signal (all threads of each process):\n";
  fmt::format_to(std::back_inserter(out), "  {:<9} {:>7}", "kind", "rate/s");
  for (auto const& n : names) fmt::format_to(std::back_inserter(out), " {:>8}", n);
  out += "\n";
  for (auto const& s : steps) {
    fmt::format_to(std::back_inserter(out), "  {:<9} {:>7}", s.kind, rate_text(s.rate));
    for (auto const& n : names) {
      auto it = std::find_if(s.cpu.begin(), s.cpu.end(), [&](auto const& c) { return c.name == n; });
      fmt::format_to(std::back_inserter(out), " {:>8.1f}", it == s.cpu.end() ? 0.0 : it->context_switches_per_signal);
    }
    out += "\n";
  }
}

std::string measured(double value) { return value < 0 ? "n/a" : fmt::format("{:.0f}", value); }

void text_traffic(std::string& out, std::vector<rate_step> const& steps) {
  fmt::format_to(std::back_inserter(out), "  {:<9} {:>7} {:<10} {:>5} {:>11} {:>11} {:>11} {:>11} {:>6} {:>6} {:>9} {:>5}\n",
                 "kind", "rate/s", "instance", "peers", "live recv", "expected", "frames sent", "expected", "gaps",
                 "catch", "replayed", "slow");
  for (auto const& s : steps)
    for (auto const& t : s.traffic)
      fmt::format_to(std::back_inserter(out), "  {:<9} {:>7} {:<10} {:>5} {:>11} {:>11.0f} {:>11} {:>11.0f} {:>6} {:>6} {:>9} {:>5}\n",
                     s.kind, rate_text(s.rate), t.instance, t.peers, measured(t.live_received), t.live_expected,
                     measured(t.frames_sent), t.frames_expected, measured(t.gaps), measured(t.catch_ups),
                     measured(t.replayed_events), measured(t.slow_consumers));
}

// --- JSON -------------------------------------------------------------------

class json_out {
 public:
  json_out& open(char bracket) {
    separate();
    out_ += bracket;
    first_ = true;
    return *this;
  }
  json_out& close(char bracket) {
    out_ += bracket;
    first_ = false;
    return *this;
  }
  json_out& key(std::string_view k) {
    separate();
    out_ += protocol::json_quote(k);
    out_ += ':';
    first_ = true;  // the value follows without a comma
    return *this;
  }
  json_out& str(std::string_view v) {
    separate();
    out_ += protocol::json_quote(v);
    return *this;
  }
  json_out& num(double v) {
    separate();
    if (!std::isfinite(v)) out_ += "null";
    else if (v == std::floor(v) && std::fabs(v) < 1e15) out_ += fmt::format("{:.0f}", v);
    else out_ += fmt::format("{:.4f}", v);
    return *this;
  }
  json_out& boolean(bool v) {
    separate();
    out_ += v ? "true" : "false";
    return *this;
  }
  json_out& null() {
    separate();
    out_ += "null";
    return *this;
  }
  std::string take() { return std::move(out_); }

 private:
  void separate() {
    if (!first_) out_ += ',';
    first_ = false;
  }
  std::string out_;
  bool first_ = true;
};

void json_latency(json_out& j, latency_summary const& l) {
  j.open('{');
  j.key("count").num(static_cast<double>(l.count));
  j.key("p50_ms").num(l.p50_ms);
  j.key("p90_ms").num(l.p90_ms);
  j.key("p99_ms").num(l.p99_ms);
  j.key("max_ms").num(l.max_ms);
  j.key("mean_ms").num(l.mean_ms);
  j.close('}');
}

void json_counts(json_out& j, std::map<std::string, std::uint64_t> const& values) {
  j.open('{');
  for (auto const& [k, v] : values) j.key(k).num(static_cast<double>(v));
  j.close('}');
}

void json_placement(json_out& j, placement_figures const& p) {
  j.open('{');
  j.key("method").str(p.method);
  j.key("connections_opened").num(static_cast<double>(p.connections_opened));
  j.key("connections_used").num(static_cast<double>(p.connections_used));
  j.key("rooms").num(static_cast<double>(p.rooms));
  j.key("rooms_fully_spread").num(static_cast<double>(p.rooms_fully_spread));
  j.key("opened_per_instance");
  json_counts(j, p.opened_per_instance);
  j.key("used_per_instance");
  json_counts(j, p.used_per_instance);
  j.close('}');
}

void json_step(json_out& j, rate_step const& s) {
  j.open('{');
  j.key("kind").str(s.kind);
  j.key("id").num(static_cast<double>(s.id));
  j.key("rate").num(s.rate);
  j.key("seconds").num(s.seconds);
  j.key("target").num(static_cast<double>(s.target));
  j.key("sent").num(static_cast<double>(s.sent));
  j.key("received").num(static_cast<double>(s.received));
  j.key("lost").num(static_cast<double>(s.lost));
  j.key("errors").num(static_cast<double>(s.errors));
  j.key("error_codes");
  json_counts(j, s.error_codes);
  j.key("late").num(static_cast<double>(s.late));
  if (s.ledger) {
    j.key("ledger").open('{');
    j.key("acked").num(static_cast<double>(s.acked));
    j.key("refused").num(static_cast<double>(s.refused));
    j.key("delivered").num(static_cast<double>(s.delivered));
    j.key("lost_acknowledged").num(static_cast<double>(s.lost_acknowledged));
    j.key("refused_but_delivered").num(static_cast<double>(s.refused_but_delivered));
    j.key("unconfirmed").num(static_cast<double>(s.unconfirmed));
    j.key("unconfirmed_delivered").num(static_cast<double>(s.unconfirmed_delivered));
    j.key("unanswered_undelivered").num(static_cast<double>(s.unanswered_undelivered));
    j.key("duplicates").num(static_cast<double>(s.duplicates));
    j.close('}');
  }
  if (!s.windows.empty()) {
    j.key("windows").open('[');
    for (auto const& w : s.windows) {
      j.open('{');
      j.key("second").num(static_cast<double>(w.second));
      j.key("sent").num(static_cast<double>(w.sent));
      j.key("received").num(static_cast<double>(w.received));
      j.key("p99_ms").num(w.p99_ms);
      j.close('}');
    }
    j.close(']');
  }
  j.key("queue_full").num(static_cast<double>(s.queue_full));
  j.key("connections_lost").num(static_cast<double>(s.connections_lost));
  j.key("pacer_max_lag_ms").num(s.pacer_max_lag_ms);
  j.key("drain_ms").num(s.drain_ms);
  j.key("latency");
  json_latency(j, s.latency);
  j.key("pass").boolean(s.pass);
  j.key("verdict").str(s.verdict);
  j.key("cpu").open('[');
  for (auto const& c : s.cpu) {
    j.open('{');
    j.key("name").str(c.name);
    j.key("role").str(c.role);
    j.key("cpu_seconds").num(c.cpu_seconds);
    j.key("us_per_signal").num(c.us_per_signal);
    j.key("context_switches_per_signal").num(c.context_switches_per_signal);
    j.close('}');
  }
  j.close(']');
  j.key("servers_us_per_signal").num(s.servers_us_per_signal);
  j.key("bench_us_per_signal").num(s.bench_us_per_signal);
  j.key("traffic").open('[');
  for (auto const& t : s.traffic) {
    j.open('{');
    j.key("instance").str(t.instance);
    j.key("peers").num(static_cast<double>(t.peers));
    if (t.live_received < 0) j.key("live_messages_received").null();
    else j.key("live_messages_received").num(t.live_received);
    j.key("live_messages_expected").num(t.live_expected);
    if (t.frames_sent < 0) j.key("frames_sent").null();
    else j.key("frames_sent").num(t.frames_sent);
    j.key("frames_expected").num(t.frames_expected);
    if (t.events_appended < 0) j.key("events_appended").null();
    else j.key("events_appended").num(t.events_appended);
    for (auto const& [name, value] : {std::pair<char const*, double>{"gaps_detected", t.gaps},
                                      {"catch_ups", t.catch_ups},
                                      {"replayed_events", t.replayed_events},
                                      {"slow_consumers", t.slow_consumers}}) {
      if (value < 0) j.key(name).null();
      else j.key(name).num(value);
    }
    j.close('}');
  }
  j.close(']');
  j.close('}');
}

}  // namespace

std::string render_text(bench_results const& r) {
  std::string out;
  auto fact = [&](char const* key) {
    auto it = r.machine.find(key);
    return it == r.machine.end() ? std::string("?") : it->second;
  };
  add(out, "sigstream-bench {} ({}){}\n", r.version, r.started_at, r.settings.label.empty() ? "" : " [" + r.settings.label + "]");
  add(out, "system: {}: {}\n", r.system, r.system_description);
  add(out, "machine: {} CPUs ({}), {} GiB RAM, {} (Debian {}), kernel {}\n", fact("nproc"), fact("cpu"), fact("ram_gib"),
      fact("os"), fact("debian_version"), fact("kernel"));
  add(out, "target: {}; peers connect {}\n", r.target_url,
      r.settings.placement == "direct" ? "directly to the instance URLs"
                                       : "through it (HAProxy), each placed by the instance its upgrade response names");
  if (!r.instance_endpoints.empty()) {
    add(out, "instances (for /metrics):");
    for (auto const& [id, url] : r.instance_endpoints) add(out, " {}={}", id, url);
    add(out, "\n");
  }
  add(out, "watched processes ({}):", r.process_source);
  for (auto const& p : r.processes)
    add(out, " {}={}{}", p.name, p.pid, p.role == "instance" ? " [instance " + (p.instance_id.empty() ? "?" : p.instance_id) + "]" : " [" + p.role + "]");
  add(out, "\n\n");

  if (r.memory) {
    auto const& m = *r.memory;
    add(out, "== Resident memory per idle peer ({} requested, {} connected, {} joined to rooms of {}; RSS after {:.1f} s)\n",
        m.peers_requested, m.peers_connected, m.peers_joined, r.settings.room_size, m.settle_seconds);
    add(out, "  {:<10} {:<13} {:<10} {:>6} {:>12} {:>12} {:>12}\n", "process", "role", "instance", "peers", "RSS before",
        "RSS after", "bytes/peer");
    for (auto const& row : m.rows)
      add(out, "  {:<10} {:<13} {:<10} {:>6} {:>9} KiB {:>9} KiB {:>12.0f}\n", row.name, row.role,
          row.instance.empty() ? "-" : row.instance, row.peers, row.rss_before_kib, row.rss_after_kib, row.bytes_per_peer);
    add(out, "  instances together: {:.0f} bytes ({:.2f} KiB) per idle peer; worst instance {:.0f} bytes\n\n",
        m.instance_bytes_per_peer, m.instance_bytes_per_peer / 1024, m.worst_instance_bytes_per_peer);
  }

  if (r.placement) {
    auto const& p = *r.placement;
    add(out, "== Placement\n  {} rooms of {}: {} with peers {}; connections opened {} ({}), used {} ({})\n\n", p.rooms,
        r.settings.room_size, p.rooms_fully_spread,
        r.settings.room_spread == "together" ? "all on one instance" : "on as many distinct instances as possible",
        p.connections_opened, join_counts(p.opened_per_instance),
        p.connections_used, join_counts(p.used_per_instance));
  }

  if (!r.joins.empty()) {
    add(out, "== Join latency: from sending join to receiving joined (ms)\n");
    add(out, "  {:<34} {:>6} {:>8} {:>8} {:>8} {:>8} {:>8}\n", "", "n", "p50", "p90", "p99", "max", "mean");
    for (auto const& j : r.joins) {
      latency_row(out, j.mode + " (all joins)", j.all);
      latency_row(out, "  first of its room on its instance", j.first_on_instance);
      latency_row(out, "  instance already followed room", j.instance_follows);
      add(out, "  {:<34} {} attempted, {} refused ({}), {} unanswered, {:.2f} s wall\n", "", j.attempted, j.failed,
          join_counts(j.errors), j.timed_out, j.wall_seconds);
      if (!j.cpu.empty()) {
        std::string shares;
        for (auto const& c : j.cpu) shares += fmt::format("{}{} {:.0f}", shares.empty() ? "" : ", ", c.name, c.us_per_join);
        add(out, "  {:<34} CPU per join (us): {}; servers {:.0f}, bench {:.0f}\n", "", shares, j.servers_us_per_join,
            j.bench_us_per_join);
      }
    }
    add(out, "\n");
  }

  std::vector<rate_step> steps = r.steps;
  if (!steps.empty()) {
    add(out, "== End-to-end signal latency: targeted signals to a peer on {}, {}-byte padding, {:.0f} s per step\n",
        r.settings.room_spread == "together" ? "the same instance (--room-spread together)" : "another instance",
        r.settings.payload_bytes, std::chrono::duration<double>(r.settings.duration).count());
    text_steps(out, steps);
    auto limit = r.settings.lossless_p99.count();
    if (r.max_lossless_rate)
      add(out, "  highest rate with nothing lost and p99 < {} ms: {}/s", limit, rate_text(*r.max_lossless_rate));
    else
      add(out, "  highest rate with nothing lost and p99 < {} ms: none of the rates tried", limit);
    if (r.first_failed_rate) add(out, " (lowest failing rate: {}/s)", rate_text(*r.first_failed_rate));
    else add(out, " (no rate up to the last one tried failed)");
    add(out, "\n\n== What became of each signal, once the run's last wait was over ({})\n",
        r.settings.signal_acks ? "signals asked for acknowledgements"
                               : "--signal-acks=false: nothing is acknowledged, so nothing is told apart");
    add(out, "  acked+lost: acknowledged, never delivered (must be 0); refused+dl: refused, yet delivered (must be 0);\n"
             "  unanswered: neither answered nor delivered; dups: delivered more than once;\n"
             "  unconf: answered unavailable with \"may still be delivered\" (an append not confirmed in time);\n"
             "  unconf+dl: of those, delivered after all (allowed: the client sends again with the same id)\n");
    text_ledger(out, steps);
    add(out, "\n== CPU time per delivered signal (us), by process\n");
    text_cpu(out, steps);
    if (!r.instance_endpoints.empty()) {
      add(out, "\n== Traffic per instance from /metrics: live events received from NATS, frames sent to clients\n");
      text_traffic(out, steps);
    }
    add(out, "\n");
  }

  if (r.overload) {
    auto const& o = *r.overload;
    auto const* over = find_step(r, o.overload_step);
    auto const* rec = find_step(r, o.recovery_step);
    add(out, "== Overload: {:.0f}/s ({}), then {}/s\n", o.rate, o.rate_source, r.settings.recovery_rate);
    if (over != nullptr && rec != nullptr) {
      std::map<std::string, std::uint64_t> codes = over->error_codes;
      for (auto const& [code, n] : rec->error_codes) codes[code] += n;
      add(out, "  refused: {} ({})\n", over->refused + rec->refused, join_counts(codes));
      add(out,
          "  acknowledged, never delivered: {} (must be 0); delivered twice: {}; neither answered nor delivered: {} "
          "({} of them never left the bench: its queue to a closed or slow connection was full, or they were still "
          "queued when the overload's schedule ended)\n",
          over->lost_acknowledged + rec->lost_acknowledged, over->duplicates + rec->duplicates,
          over->unanswered_undelivered + rec->unanswered_undelivered, over->queue_full + rec->queue_full);
      add(out, "  recovery p99 per second (ms, by send time; received/sent):");
      for (auto const& w : rec->windows) add(out, " {}:{}({}/{})", w.second, ms(w.p99_ms), w.received, w.sent);
      add(out, "\n");
    }
    if (o.back_to_normal_seconds)
      add(out, "  back to normal (every signal delivered, p99 < {:.0f} ms, every second after): {:.0f} s after the overload\n",
          recovered_p99_ms, *o.back_to_normal_seconds);
    else
      add(out, "  back to normal (p99 < {:.0f} ms, nothing missing): not within the recovery step\n", recovered_p99_ms);
    if (o.expired_peers < 0)
      add(out, "  instance taken for dead: not measured (no liveness metrics)\n");
    else
      add(out, "  instance taken for dead: {} ({:.0f} peers expired; fewest instances seen alive {:.0f} of {})\n",
          o.expired_peers > 0 || o.fewest_instances_alive < static_cast<double>(o.instances) ? "YES" : "no",
          o.expired_peers, o.fewest_instances_alive, o.instances);
    if (!o.instance_counters.empty()) {
      add(out, "  instance counters gained over both steps, all instances:");
      for (auto const& [name, value] : o.instance_counters) add(out, " {}={:.0f}", name, value);
      add(out, "\n");
    }
    add(out, "  server processes gone: {}; bench connections closed by the servers: {}\n\n",
        o.processes_gone.empty() ? std::string("none") : fmt::format("{}", fmt::join(o.processes_gone, ", ")),
        o.connections_closed);
  }

  if (r.isolation) {
    auto const& iso = *r.isolation;
    std::string used, excluded;
    for (auto const& u : iso.used_instances) used += (used.empty() ? "" : ", ") + u;
    for (auto const& e : iso.excluded_instances) excluded += (excluded.empty() ? "" : ", ") + e;
    add(out, "== Isolation: rooms only on {}; {} hosts none of their peers\n", used, excluded);
    add(out, "  {} rooms; connections opened {} ({})\n", iso.placement.rooms, iso.placement.connections_opened,
        join_counts(iso.placement.opened_per_instance));
    if (iso.step) {
      std::vector<rate_step> one{*iso.step};
      text_steps(out, one);
      text_traffic(out, one);
    }
    add(out, "\n");
  }

  if (!r.notes.empty()) {
    add(out, "notes:\n");
    for (auto const& n : r.notes) add(out, "  - {}\n", n);
  }
  return out;
}

rate_step const* find_step(bench_results const& r, std::uint64_t id) {
  for (auto const& s : r.steps)
    if (s.id == id) return &s;
  return nullptr;
}

std::string render_side_by_side(std::vector<bench_results> const& systems) {
  constexpr int figure_width = 44, column_width = 24;
  std::string out;
  std::string names;
  for (auto const& r : systems) names += (names.empty() ? "" : " / ") + r.system;
  add(out, "== Side by side: {} (measured in this run, one system after the other, same workloads)\n", names);
  add(out, "  {:<{}}", "", figure_width);
  for (auto const& r : systems) add(out, "{:>{}}", r.system, column_width);
  add(out, "\n");
  auto row = [&](std::string const& figure, auto&& cell) {
    add(out, "  {:<{}}", figure, figure_width);
    for (auto const& r : systems) add(out, "{:>{}}", cell(r), column_width);
    add(out, "\n");
  };
  auto join_cell = [](bench_results const& r, std::string const& mode) {
    for (auto const& j : r.joins)
      if (j.mode == mode) return fmt::format("{} / {}", ms(j.all.p50_ms), ms(j.all.p99_ms));
    return std::string("-");
  };
  row("joins one at a time p50 / p99 (ms)", [&](auto const& r) { return join_cell(r, "sequential"); });
  row("joins all at once p50 / p99 (ms)", [&](auto const& r) { return join_cell(r, "burst"); });
  row("  server CPU per join, all / instances (us)", [](bench_results const& r) {
    for (auto const& j : r.joins) {
      if (j.mode != "burst" || j.cpu.empty()) continue;
      double instances = 0;
      for (auto const& c : j.cpu)
        if (c.role == "instance") instances += c.us_per_join;
      return fmt::format("{:.0f} / {:.0f}", j.servers_us_per_join, instances);
    }
    return std::string("-");
  });
  row("instance memory per idle peer (KiB)", [](bench_results const& r) {
    return r.memory ? fmt::format("{:.2f}", r.memory->instance_bytes_per_peer / 1024) : std::string("-");
  });

  std::set<double> rates;
  for (auto const& r : systems)
    for (auto const& s : r.steps)
      if (s.kind == "fixed") rates.insert(s.rate);
  for (double rate : rates) {
    auto at = [rate](bench_results const& r) -> rate_step const* {
      for (auto const& s : r.steps)
        if (s.kind == "fixed" && s.rate == rate) return &s;
      return nullptr;
    };
    auto cell = [&](auto&& format) {
      return [&, format](bench_results const& r) {
        auto const* s = at(r);
        return s == nullptr ? std::string("-") : format(*s);
      };
    };
    std::string label = fmt::format("{}/s ", rate_text(rate));
    row(label + "p50 / p99 (ms)", cell([](rate_step const& s) { return ms(s.latency.p50_ms) + " / " + ms(s.latency.p99_ms); }));
    row(label + "delivered / sent", cell([](rate_step const& s) { return fmt::format("{} / {}", s.received + s.late, s.sent); }));
    row(label + "lost (never arrived) / late", cell([](rate_step const& s) { return fmt::format("{} / {}", s.lost, s.late); }));
    row(label + "refused / acknowledged then lost", cell([](rate_step const& s) {
          return s.ledger ? fmt::format("{} / {}", s.refused, s.lost_acknowledged) : std::string("n/a");
        }));
    row(label + "server CPU per signal, all (us)", cell([](rate_step const& s) {
          return s.cpu.empty() ? std::string("n/a") : fmt::format("{:.0f}", s.servers_us_per_signal);
        }));
    row(label + "  of which instances (us)", cell([](rate_step const& s) {
          double instances = 0;
          for (auto const& c : s.cpu)
            if (c.role == "instance") instances += c.us_per_signal;
          return s.cpu.empty() ? std::string("n/a") : fmt::format("{:.0f}", instances);
        }));
  }
  row(fmt::format("highest rate, nothing lost, p99 < {} ms", systems.front().settings.lossless_p99.count()),
      [](bench_results const& r) {
    return r.max_lossless_rate ? rate_text(*r.max_lossless_rate) + "/s" : std::string("none");
  });
  row("lowest failing rate", [](bench_results const& r) {
    return r.first_failed_rate ? rate_text(*r.first_failed_rate) + "/s" : std::string("none failed");
  });
  bool any_overload = false;
  for (auto const& r : systems) any_overload = any_overload || r.overload.has_value();
  if (any_overload) {
    auto overload_cell = [](auto&& format) {
      return [format](bench_results const& r) {
        if (!r.overload) return std::string("-");
        auto const* over = find_step(r, r.overload->overload_step);
        auto const* rec = find_step(r, r.overload->recovery_step);
        if (over == nullptr || rec == nullptr) return std::string("-");
        return std::string(format(*r.overload, *over, *rec));
      };
    };
    row("overload rate (/s)", overload_cell([](overload_figures const& o, auto&, auto&) { return rate_text(o.rate); }));
    row("overload: refused", overload_cell([](auto&, rate_step const& a, rate_step const& b) {
          return fmt::format("{}", a.refused + b.refused);
        }));
    row("overload: acknowledged then lost", overload_cell([](auto&, rate_step const& a, rate_step const& b) {
          return fmt::format("{}", a.lost_acknowledged + b.lost_acknowledged);
        }));
    row("overload: back to p99 < 5 ms after (s)", overload_cell([](overload_figures const& o, auto&, auto&) {
          return o.back_to_normal_seconds ? fmt::format("{:.0f}", *o.back_to_normal_seconds) : std::string("not in step");
        }));
    row("overload: instance taken for dead", overload_cell([](overload_figures const& o, auto&, auto&) {
          if (o.expired_peers < 0) return std::string("n/a");
          return std::string(o.expired_peers > 0 || o.fewest_instances_alive < static_cast<double>(o.instances) ? "yes"
                                                                                                              : "no");
        }));
    row("overload: server processes gone", overload_cell([](overload_figures const& o, auto&, auto&) {
          return fmt::format("{}", o.processes_gone.size());
        }));
  }
  add(out, "  (CPU: utime + stime of every server process over each step and its drain, per delivered signal;\n"
           "   sigstream: instances, nats-server, redis-server, haproxy; socketio: the node instances, redis-server,\n"
           "   haproxy. Only watched processes count: see each system's process list above.)\n");
  return out;
}

std::string render_json(bench_results const& r) {
  json_out j;
  j.open('{');
  j.key("system").str(r.system);
  j.key("system_description").str(r.system_description);
  j.key("target_url").str(r.target_url);
  j.key("version").str(r.version);
  j.key("started_at").str(r.started_at);
  j.key("label").str(r.settings.label);
  j.key("machine").open('{');
  for (auto const& [k, v] : r.machine) j.key(k).str(v);
  j.close('}');
  j.key("settings").open('{');
  j.key("url").str(r.settings.url);
  j.key("placement").str(r.settings.placement);
  j.key("room_spread").str(r.settings.room_spread);
  j.key("phases").str(r.settings.phases);
  j.key("rooms").num(static_cast<double>(r.settings.rooms));
  j.key("room_size").num(static_cast<double>(r.settings.room_size));
  j.key("rates").str(r.settings.rates);
  j.key("duration_s").num(std::chrono::duration<double>(r.settings.duration).count());
  j.key("max_rate").num(static_cast<double>(r.settings.max_rate));
  j.key("rate_step").num(static_cast<double>(r.settings.rate_step));
  j.key("lossless_p99_ms").num(static_cast<double>(r.settings.lossless_p99.count()));
  j.key("payload_bytes").num(static_cast<double>(r.settings.payload_bytes));
  j.key("idle_peers").num(static_cast<double>(r.settings.idle_peers));
  j.key("client_threads").num(static_cast<double>(r.settings.client_threads));
  j.key("signal_acks").boolean(r.settings.signal_acks);
  j.key("overload").boolean(r.settings.overload);
  j.close('}');
  j.key("open_file_limit").num(static_cast<double>(r.open_file_limit));
  j.key("process_source").str(r.process_source);
  j.key("processes").open('[');
  for (auto const& p : r.processes) {
    j.open('{');
    j.key("name").str(p.name);
    j.key("role").str(p.role);
    j.key("pid").num(p.pid);
    j.key("instance").str(p.instance_id);
    j.close('}');
  }
  j.close(']');
  j.key("instances").open('{');
  for (auto const& [id, url] : r.instance_endpoints) j.key(id).str(url);
  j.close('}');
  j.key("memory");
  if (!r.memory) {
    j.null();
  } else {
    auto const& m = *r.memory;
    j.open('{');
    j.key("peers_requested").num(static_cast<double>(m.peers_requested));
    j.key("peers_connected").num(static_cast<double>(m.peers_connected));
    j.key("peers_joined").num(static_cast<double>(m.peers_joined));
    j.key("settle_seconds").num(m.settle_seconds);
    j.key("instance_bytes_per_peer").num(m.instance_bytes_per_peer);
    j.key("worst_instance_bytes_per_peer").num(m.worst_instance_bytes_per_peer);
    j.key("processes").open('[');
    for (auto const& row : m.rows) {
      j.open('{');
      j.key("name").str(row.name);
      j.key("role").str(row.role);
      j.key("instance").str(row.instance);
      j.key("peers").num(static_cast<double>(row.peers));
      j.key("rss_before_kib").num(static_cast<double>(row.rss_before_kib));
      j.key("rss_after_kib").num(static_cast<double>(row.rss_after_kib));
      j.key("bytes_per_peer").num(row.bytes_per_peer);
      j.close('}');
    }
    j.close(']');
    j.close('}');
  }
  j.key("placement");
  if (r.placement) json_placement(j, *r.placement);
  else j.null();
  j.key("joins").open('[');
  for (auto const& jf : r.joins) {
    j.open('{');
    j.key("mode").str(jf.mode);
    j.key("attempted").num(static_cast<double>(jf.attempted));
    j.key("joined").num(static_cast<double>(jf.joined));
    j.key("refused").num(static_cast<double>(jf.failed));
    j.key("unanswered").num(static_cast<double>(jf.timed_out));
    j.key("errors");
    json_counts(j, jf.errors);
    j.key("wall_seconds").num(jf.wall_seconds);
    j.key("all");
    json_latency(j, jf.all);
    j.key("first_on_instance");
    json_latency(j, jf.first_on_instance);
    j.key("instance_follows");
    json_latency(j, jf.instance_follows);
    j.key("cpu").open('[');
    for (auto const& c : jf.cpu) {
      j.open('{');
      j.key("name").str(c.name);
      j.key("role").str(c.role);
      j.key("cpu_ms").num(c.cpu_ms);
      j.key("us_per_join").num(c.us_per_join);
      j.close('}');
    }
    j.close(']');
    j.key("servers_us_per_join").num(jf.servers_us_per_join);
    j.key("bench_us_per_join").num(jf.bench_us_per_join);
    j.close('}');
  }
  j.close(']');
  j.key("steps").open('[');
  for (auto const& s : r.steps) json_step(j, s);
  j.close(']');
  j.key("max_lossless_rate");
  if (r.max_lossless_rate) j.num(*r.max_lossless_rate);
  else j.null();
  j.key("first_failed_rate");
  if (r.first_failed_rate) j.num(*r.first_failed_rate);
  else j.null();
  j.key("isolation");
  if (!r.isolation) {
    j.null();
  } else {
    j.open('{');
    j.key("used_instances").open('[');
    for (auto const& u : r.isolation->used_instances) j.str(u);
    j.close(']');
    j.key("excluded_instances").open('[');
    for (auto const& e : r.isolation->excluded_instances) j.str(e);
    j.close(']');
    j.key("placement");
    json_placement(j, r.isolation->placement);
    j.key("step");
    if (r.isolation->step) json_step(j, *r.isolation->step);
    else j.null();
    j.close('}');
  }
  j.key("overload");
  if (!r.overload) {
    j.null();
  } else {
    auto const& o = *r.overload;
    j.open('{');
    j.key("rate").num(o.rate);
    j.key("rate_source").str(o.rate_source);
    j.key("overload_step").num(static_cast<double>(o.overload_step));
    j.key("recovery_step").num(static_cast<double>(o.recovery_step));
    j.key("back_to_normal_seconds");
    if (o.back_to_normal_seconds) j.num(*o.back_to_normal_seconds);
    else j.null();
    j.key("recovered_p99_ms").num(recovered_p99_ms);
    j.key("expired_peers");
    if (o.expired_peers < 0) j.null();
    else j.num(o.expired_peers);
    j.key("fewest_instances_alive");
    if (o.fewest_instances_alive < 0) j.null();
    else j.num(o.fewest_instances_alive);
    j.key("instances").num(static_cast<double>(o.instances));
    j.key("instance_counters").open('{');
    for (auto const& [name, value] : o.instance_counters) j.key(name).num(value);
    j.close('}');
    j.key("processes_gone").open('[');
    for (auto const& p : o.processes_gone) j.str(p);
    j.close(']');
    j.key("connections_closed").num(static_cast<double>(o.connections_closed));
    j.close('}');
  }
  j.key("notes").open('[');
  for (auto const& n : r.notes) j.str(n);
  j.close(']');
  j.close('}');
  return j.take() + "\n";
}

}  // namespace sig::bench
