#include "bench/bench_runner.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>

#include <algorithm>
#include <fstream>
#include <future>
#include <iostream>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "bench/bench_client.hpp"
#include "bench/bench_hub.hpp"
#include "bench/bench_pacer.hpp"
#include "bench/bench_placement.hpp"
#include "bench/bench_system.hpp"

namespace sig::bench {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;

namespace {

constexpr int max_rate_steps = 40;  // fixed + search + refinement, all together

// "bench [socketio]: " while that system runs: progress lines of several
// systems in one invocation say whose they are.
std::string progress_prefix = "bench: ";

template <typename... Args>
void progress(fmt::format_string<Args...> format, Args&&... args) {
  std::cerr << progress_prefix << fmt::format(format, std::forward<Args>(args)...) << std::endl;
}

template <typename Map>
std::string join_map(Map const& values) {
  std::string out;
  for (auto const& [key, value] : values) out += fmt::format("{}{}={}", out.empty() ? "" : ", ", key, value);
  return out.empty() ? "(none)" : out;
}

std::string random_run_id() {
  std::random_device device;
  return fmt::format("{:08x}", device());
}

class runner {
 public:
  runner(bench_settings const& s, system_target const& t, bench_results& r) : s_(s), t_(t), results_(r) {}

  ~runner() { stop_io(); }

  int run();

 private:
  // --- Set-up -----------------------------------------------------------------
  bool setup();
  void start_io();
  void stop_io();
  std::optional<http_result> get_metrics_page(target_url const& url);
  std::map<std::string, metric_values> metrics_snapshot();
  // Every watched process's CPU, and the bench's own. `read` is cpu_seconds
  // (clock ticks) or cpu_seconds_exact (to the nanosecond: for a join burst).
  std::map<std::string, double> cpu_snapshot(std::optional<double> (*read)(int) = cpu_seconds);
  std::map<std::string, std::uint64_t> switches_snapshot();

  // --- Connections and rooms --------------------------------------------------
  std::vector<peer_ptr> connect_peers(std::size_t count, std::vector<target_url> const& targets, std::string_view what);
  std::vector<target_url> connect_targets(std::set<std::string> const& allowed);
  std::optional<room_list> build_rooms(std::size_t room_count, std::set<std::string> const& allowed,
                                       std::string_view what, placement_figures& figures);
  void close_peers(std::vector<peer_ptr> const& peers, std::string_view what);
  join_figures join_rooms(room_list const& rooms, std::string const& prefix, bool sequential, std::string_view what);
  void leave_rooms(room_list const& rooms);
  std::vector<send_pair> make_pairs(room_list const& rooms);
  std::set<std::string> known_instances() const;

  // --- Phases -----------------------------------------------------------------
  void memory_phase();
  void join_and_signal_phases(bool joins_wanted, bool signals_wanted);
  rate_step run_step(std::string kind, double rate, std::chrono::milliseconds duration, room_list const& rooms,
                     std::vector<send_pair> const& pairs, std::chrono::milliseconds drain, bool drop_unsent = false);
  void overload_phase(room_list const& rooms, std::vector<send_pair> const& pairs);
  void isolation_phase();
  void wait_for_server_peers(std::int64_t expected_total, std::chrono::seconds bound);
  void quiesce();
  void account_late(rate_step& step);
  void account_ledger(rate_step& step);

  bench_settings const& s_;
  system_target const& t_;
  bench_results& results_;
  asio::io_context io_{static_cast<int>(s_.client_threads)};  // the hint: threads that run it
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::vector<std::thread> threads_;
  hub hub_{*t_.protocol};
  std::string run_id_ = random_run_id();
  std::uint64_t next_step_ = 0;

  target_url lb_url_;
  std::map<std::string, target_url> instance_urls_;  // instance id -> direct URL
  std::vector<watched_process> processes_;
  std::set<std::string> seen_instances_;
  std::vector<peer_ptr> all_peers_;
  std::string trace_text_;  // --trace: what was sent, step by step
};

// --- Set-up ---------------------------------------------------------------------

void runner::start_io() {
  work_.emplace(io_.get_executor());
  for (std::int64_t i = 0; i < s_.client_threads; ++i) threads_.emplace_back([this] { io_.run(); });
}

void runner::stop_io() {
  if (threads_.empty()) return;
  work_.reset();
  // Anything still pending (a close that never completes) is bounded by
  // its own timeout; give it a moment, then stop.
  for (int i = 0; i < 40 && !io_.stopped(); ++i) std::this_thread::sleep_for(50ms);
  io_.stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

std::optional<http_result> runner::get_metrics_page(target_url const& url) {
  auto promise = std::make_shared<std::promise<http_result>>();
  auto future = promise->get_future();
  http_get(io_, tcp::endpoint(asio::ip::make_address(url.address), url.port), url.host_header, "/metrics",
           s_.connect_timeout, [promise](http_result result) { promise->set_value(std::move(result)); });
  if (future.wait_for(s_.connect_timeout + 1s) != std::future_status::ready) return std::nullopt;
  return future.get();
}

std::map<std::string, metric_values> runner::metrics_snapshot() {
  std::map<std::string, std::shared_future<http_result>> pending;
  for (auto const& [id, url] : instance_urls_) {
    auto promise = std::make_shared<std::promise<http_result>>();
    pending[id] = promise->get_future().share();
    http_get(io_, tcp::endpoint(asio::ip::make_address(url.address), url.port), url.host_header, "/metrics",
             s_.connect_timeout, [promise](http_result result) { promise->set_value(std::move(result)); });
  }
  std::map<std::string, metric_values> out;
  auto deadline = steady::now() + s_.connect_timeout + 1s;
  for (auto& [id, future] : pending) {
    if (future.wait_until(deadline) != std::future_status::ready) continue;
    auto const& result = future.get();
    if (result.ok && result.status == 200) out[id] = parse_prometheus(result.body);
  }
  return out;
}

std::map<std::string, double> runner::cpu_snapshot(std::optional<double> (*read)(int)) {
  std::map<std::string, double> out;
  for (auto const& p : processes_)
    if (auto seconds = read(p.pid)) out[p.name] = *seconds;
  out["(bench)"] = own_cpu_seconds();
  return out;
}

std::map<std::string, std::uint64_t> runner::switches_snapshot() {
  std::map<std::string, std::uint64_t> out;
  for (auto const& p : processes_)
    if (auto n = context_switches(p.pid)) out[p.name] = *n;
  return out;
}

bool runner::setup() {
  auto lb = parse_loopback_url(t_.url);
  if (!lb.url) {
    std::cerr << "sigstream-bench: --url " << lb.error << "\n";
    return false;
  }
  lb_url_ = *lb.url;

  process_list found;
  if (t_.processes) {
    found.processes = *t_.processes;
    found.source = t_.process_source;
  } else {
    found = find_processes(s_.pids, s_.pid_dir);
  }
  for (auto const& e : found.errors) {
    progress("warning: {}", e);
    results_.notes.push_back("process list: " + e);
  }
  processes_ = found.processes;
  results_.process_source = found.source;

  // Direct instance URLs: given, or from the processes (pid directory ports,
  // or --listen on their command lines).
  std::vector<target_url> direct;
  std::vector<std::string> texts = t_.instance_metrics ? split_list(s_.instance_urls) : std::vector<std::string>{};
  if (texts.empty() && t_.instance_metrics) {
    for (auto const& p : processes_) {
      if (p.role != process_role::instance) continue;
      std::optional<std::string> where;
      if (p.port) where = fmt::format("ws://127.0.0.1:{}/ws", *p.port);
      else if (auto listen = command_line_option(p.command_line, "listen")) where = "ws://" + *listen + "/ws";
      if (where) texts.push_back(*where);
    }
  }
  for (auto const& text : texts) {
    auto parsed = parse_loopback_url(text);
    if (!parsed.url) {
      std::cerr << "sigstream-bench: --instance-urls " << parsed.error << "\n";
      return false;
    }
    direct.push_back(*parsed.url);
  }

  results_.open_file_limit = raise_open_file_limit();
  start_io();

  // Which instance answers at each direct URL.
  for (auto const& url : direct) {
    auto page = get_metrics_page(url);
    if (!page || !page->ok || page->status != 200 || page->instance.empty()) {
      auto why = page ? (page->ok ? fmt::format("status {}", page->status) : page->error) : std::string("no answer");
      progress("warning: {} did not answer /metrics with X-Sigstream-Instance ({})", url.text, why);
      results_.notes.push_back("instance URL " + url.text + " unusable: " + why);
      continue;
    }
    instance_urls_[page->instance] = url;
    results_.instance_endpoints[page->instance] = url.text;
  }
  // Name the instance processes by the id they answer with.
  for (auto& p : processes_) {
    if (p.role != process_role::instance) continue;
    if (instance_urls_.count(p.name) != 0) {
      p.instance_id = p.name;
      continue;
    }
    if (!p.instance_id.empty()) continue;
    for (auto const& [id, url] : instance_urls_) {
      auto listen = command_line_option(p.command_line, "listen");
      if ((p.port && *p.port == url.port) || (listen && listen->size() > 0 && listen->substr(listen->rfind(':') + 1) ==
                                                                                 std::to_string(url.port)))
        p.instance_id = id;
    }
  }
  for (auto const& p : processes_)
    results_.processes.push_back(process_info{p.name, std::string(to_string(p.role)), p.instance_id, p.pid});

  if (s_.placement == "direct" && instance_urls_.empty()) {
    std::cerr << "sigstream-bench: --placement direct needs instance URLs (--instance-urls, or a pid directory)\n";
    return false;
  }
  progress("target {} ({}); {} instance URL(s) for /metrics: {}; {} watched process(es) from {}; open files {}",
           t_.url, s_.placement == "direct" ? "peers connect to instances directly" : "peers connect through it",
           instance_urls_.size(), join_map(results_.instance_endpoints), processes_.size(), found.source,
           results_.open_file_limit);
  if (processes_.empty())
    results_.notes.push_back("no server pids (--pids or --pid-dir): memory and CPU figures are not measured");
  if (instance_urls_.empty())
    results_.notes.push_back(t_.instance_metrics
                                 ? "no instance URLs: per-instance traffic from /metrics is not measured"
                                 : "the instances have no /metrics: per-instance traffic is not measured");
  return true;
}

// --- Connections and rooms ----------------------------------------------------------

std::vector<target_url> runner::connect_targets(std::set<std::string> const& allowed) {
  if (s_.placement != "direct") return {lb_url_};
  std::vector<target_url> out;
  for (auto const& [id, url] : instance_urls_)
    if (allowed.empty() || allowed.count(id) != 0) out.push_back(url);
  return out;
}

std::vector<peer_ptr> runner::connect_peers(std::size_t count, std::vector<target_url> const& targets,
                                            std::string_view what) {
  std::vector<peer_ptr> started;
  std::uint64_t base = hub_.settled.get();
  auto window = static_cast<std::uint64_t>(std::max<std::int64_t>(1, s_.connect_window));
  auto report_at = steady::now() + 2s;
  for (std::size_t i = 0; i < count; ++i) {
    // Keep at most `window` handshakes in flight.
    if (!hub_.settled.wait_until(base + (started.size() >= window ? started.size() - window + 1 : 0),
                                 steady::now() + s_.connect_timeout + 2s)) {
      progress("warning: {}: connections stopped completing; giving up after {}", what, started.size());
      break;
    }
    auto const& url = targets[i % targets.size()];
    client_settings cs;
    cs.url = url;
    cs.endpoint = tcp::endpoint(asio::ip::make_address(url.address), url.port);
    cs.timeout = s_.connect_timeout;
    cs.counters = &hub_.counters;
    cs.instance_header = std::string(t_.protocol->instance_header());
    auto peer = std::make_shared<peer_conn>();
    peer->index = all_peers_.size();
    peer->client = make_ws_client(io_, cs);
    hub* h = &hub_;
    std::weak_ptr<peer_conn> weak = peer;
    ws_client::callbacks cb;
    bool ready_on_open = t_.protocol->ready_on_open();
    cb.on_open = [h, weak, ready_on_open](std::string instance) {
      auto p = weak.lock();
      if (p) p->instance = instance.empty() ? "(unknown)" : std::move(instance);
      // Otherwise the server's answer makes it ready (on_frame).
      if (!ready_on_open) return;
      if (p) p->status = 1;
      h->settled.add();
    };
    cb.on_fail = [h, weak](std::string error) {
      if (auto p = weak.lock()) {
        p->status = 2;
        p->join_error = std::move(error);
      }
      h->settled.add();
    };
    cb.on_message = [h, weak](std::string_view frame) {
      if (auto p = weak.lock()) on_frame(*h, *p, frame);
    };
    cb.on_close = [h, weak](std::string reason, bool expected) {
      // Closed before it was ready: it settles now, as a failure.
      if (auto p = weak.lock(); p && p->status.exchange(3) == 0) h->settled.add();
      if (!expected) {
        ++h->unexpected_closes;
        std::lock_guard lock(h->mutex);
        if (h->first_close_reason.empty()) h->first_close_reason = reason;
      }
      h->closed.add();
    };
    peer->client->start(std::move(cb));
    all_peers_.push_back(peer);
    started.push_back(std::move(peer));
    if (steady::now() >= report_at) {
      progress("{}: {} of {} connecting or open", what, started.size(), count);
      report_at = steady::now() + 2s;
    }
  }
  hub_.settled.wait_until(base + started.size(), steady::now() + s_.connect_timeout + 2s);
  std::vector<peer_ptr> open;
  std::uint64_t failed = 0;
  std::string first_error;
  for (auto& p : started) {
    if (p->status == 1) {
      open.push_back(p);
      seen_instances_.insert(p->instance);
    } else {
      ++failed;
      if (first_error.empty() && p->status == 2) first_error = p->join_error;
    }
  }
  if (failed != 0) progress("warning: {}: {} connection(s) failed (first: {})", what, failed, first_error);
  return open;
}

std::set<std::string> runner::known_instances() const {
  std::set<std::string> out;
  for (auto const& [id, url] : instance_urls_) out.insert(id);
  for (auto const& id : seen_instances_) out.insert(id);
  return out;
}

std::optional<room_list> runner::build_rooms(std::size_t room_count, std::set<std::string> const& allowed_in,
                                             std::string_view what, placement_figures& figures) {
  auto const room_size = static_cast<std::size_t>(s_.room_size);
  std::size_t need = room_count * room_size;
  figures.method = s_.placement;
  auto targets = connect_targets(allowed_in);
  std::vector<peer_ptr> pool = connect_peers(need, targets, what);
  figures.connections_opened = pool.size();
  assignment chosen;
  // Connections that landed on instances outside `allowed` stay open until
  // the rooms are complete: with leastconn, closing them would only send the
  // next connections back there.
  for (int round = 0; round < 4; ++round) {
    std::set<std::string> allowed = allowed_in;
    if (allowed.empty()) allowed = known_instances();
    std::vector<std::string> instance_of;
    for (auto const& p : pool) instance_of.push_back(p->instance);
    chosen = assign_rooms(instance_of, room_count, room_size, allowed, s_.room_spread == "together");
    if (chosen.rooms.size() == room_count && chosen.fully_spread == room_count) break;
    if (round == 3) break;
    std::size_t usable = 0;
    for (auto const& p : pool) usable += allowed.count(p->instance);
    std::size_t missing = (room_count - chosen.fully_spread) * room_size;
    // Through HAProxy only about allowed/known of new connections land where wanted.
    std::size_t known = std::max<std::size_t>(1, known_instances().size());
    std::size_t extra = std::min<std::size_t>(need, missing * known / std::max<std::size_t>(1, allowed.size()) + room_size);
    progress("{}: {} of {} rooms placed ({}) with {} usable connections; connecting {} more", what,
             chosen.fully_spread, room_count, s_.room_spread == "together" ? "each on one instance" : "over distinct instances",
             usable, extra);
    auto more = connect_peers(extra, targets, what);
    figures.connections_opened += more.size();
    pool.insert(pool.end(), more.begin(), more.end());
  }
  for (auto const& p : pool) ++figures.opened_per_instance[p->instance];
  std::vector<bool> used(pool.size(), false);
  room_list rooms;
  for (auto const& indexes : chosen.rooms) {
    std::vector<peer_ptr> room;
    for (auto i : indexes) {
      used[i] = true;
      room.push_back(pool[i]);
      ++figures.used_per_instance[pool[i]->instance];
    }
    rooms.push_back(std::move(room));
  }
  std::vector<peer_ptr> unused;
  for (std::size_t i = 0; i < pool.size(); ++i)
    if (!used[i]) unused.push_back(pool[i]);
  close_peers(unused, "unneeded connections");
  figures.connections_used = rooms.size() * room_size;
  figures.rooms = rooms.size();
  figures.rooms_fully_spread = chosen.fully_spread;
  std::size_t spread_over = s_.room_spread == "together"
                                ? 1
                                : std::min(room_size, allowed_in.empty() ? known_instances().size() : allowed_in.size());
  progress("{}: {} rooms of {} ({} with peers on {} distinct instances); peers per instance: {}", what, rooms.size(),
           room_size, chosen.fully_spread, spread_over, join_map(figures.used_per_instance));
  if (rooms.empty()) return std::nullopt;
  return rooms;
}

void runner::close_peers(std::vector<peer_ptr> const& peers, std::string_view what) {
  if (peers.empty()) return;
  std::uint64_t base = hub_.closed.get();
  std::uint64_t expected = 0;
  for (auto const& p : peers) {
    if (p->status == 1) {
      ++expected;
      p->client->close();
    }
  }
  if (!hub_.closed.wait_until(base + expected, steady::now() + s_.connect_timeout + 5s))
    progress("warning: {}: not every close completed in time", what);
}

join_figures runner::join_rooms(room_list const& rooms, std::string const& prefix, bool sequential,
                                std::string_view what) {
  join_figures out;
  out.mode = sequential ? "sequential" : "burst";
  std::vector<std::pair<peer_ptr, bool>> order;  // (peer, first of its room on its instance)
  for (std::size_t r = 0; r < rooms.size(); ++r) {
    std::set<std::string> instances;
    for (auto const& p : rooms[r]) order.emplace_back(p, instances.insert(p->instance).second);
  }
  auto send_join = [&](peer_conn& p, std::size_t room) {
    p.peer_id.clear();
    p.join_ns = -1;
    p.join_error.clear();
    p.joining = true;
    p.join_sent_ns = hub_.now_ns();
    p.client->send(
        t_.protocol->join(fmt::format("{}-{}", prefix, room), fmt::format(R"({{"bench":"{}"}})", run_id_)));
  };
  std::uint64_t base = hub_.joins.get();
  auto cpu_before = cpu_snapshot(cpu_seconds_exact);
  auto started = steady::now();
  if (sequential) {
    std::size_t k = 0;
    auto report_at = steady::now() + 2s;
    for (std::size_t r = 0; r < rooms.size(); ++r) {
      for (auto const& p : rooms[r]) {
        send_join(*p, r);
        ++k;
        if (!hub_.joins.wait_until(base + k, steady::now() + s_.join_timeout)) {
          // Whoever turns `joining` off counts the join: here, giving up on
          // it so the next wait lines up; or the strand, whose answer came
          // just now and is being recorded, so wait for that.
          if (p->joining.exchange(false)) hub_.joins.add();
          else hub_.joins.wait_until(base + k, steady::now() + std::chrono::seconds(1));
        }
        if (s_.join_pace.count() > 0) std::this_thread::sleep_for(s_.join_pace);
        if (steady::now() >= report_at) {
          progress("{}: {} of {} joins", what, k, order.size());
          report_at = steady::now() + 2s;
        }
      }
    }
  } else {
    for (std::size_t r = 0; r < rooms.size(); ++r)
      for (auto const& p : rooms[r]) send_join(*p, r);
    auto bound = s_.join_timeout + std::chrono::milliseconds(10 * order.size());
    if (!hub_.joins.wait_until(base + order.size(), steady::now() + bound))
      progress("warning: {}: not every join was answered within {} ms", what, bound.count());
  }
  out.wall_seconds = std::chrono::duration<double>(steady::now() - started).count();
  auto cpu_after = cpu_snapshot(cpu_seconds_exact);
  std::vector<std::int64_t> all, first, follows;
  for (auto const& [p, is_first] : order) {
    ++out.attempted;
    if (p->joining.exchange(false)) {
      ++out.timed_out;
      continue;
    }
    if (!p->join_error.empty()) {
      ++out.failed;
      ++out.errors[p->join_error];
      continue;
    }
    if (p->join_ns < 0) {
      ++out.timed_out;
      continue;
    }
    ++out.joined;
    all.push_back(p->join_ns);
    (is_first ? first : follows).push_back(p->join_ns);
  }
  out.all = summarize(std::move(all));
  out.first_on_instance = summarize(std::move(first));
  out.instance_follows = summarize(std::move(follows));
  if (out.joined > 0) {
    auto per_join = [&](double seconds) { return seconds * 1e6 / static_cast<double>(out.joined); };
    for (auto const& p : processes_) {
      if (!cpu_before.count(p.name) || !cpu_after.count(p.name)) continue;
      double seconds = cpu_after[p.name] - cpu_before[p.name];
      out.cpu.push_back({p.name, std::string(to_string(p.role)), seconds * 1e3, per_join(seconds)});
      out.servers_us_per_join += per_join(seconds);
    }
    out.bench_us_per_join = per_join(cpu_after["(bench)"] - cpu_before["(bench)"]);
  }
  progress("{}: {} joined, {} refused, {} unanswered in {:.2f} s; p50 {:.2f} ms, p99 {:.2f} ms, max {:.2f} ms", what,
           out.joined, out.failed, out.timed_out, out.wall_seconds, out.all.p50_ms, out.all.p99_ms, out.all.max_ms);
  return out;
}

void runner::leave_rooms(room_list const& rooms) {
  std::uint64_t base = hub_.acks.get();
  std::uint64_t sent = 0;
  for (auto const& room : rooms) {
    for (auto const& p : room) {
      if (p->status != 1 || p->peer_id.empty()) continue;
      p->leaving = true;
      p->client->send(t_.protocol->leave());
      ++sent;
    }
  }
  if (!hub_.acks.wait_until(base + sent, steady::now() + s_.join_timeout + 5s))
    progress("warning: not every leave was acknowledged in time");
  for (auto const& room : rooms)
    for (auto const& p : room) p->leaving = false;
}

std::vector<send_pair> runner::make_pairs(room_list const& rooms) {
  // Per room, every ordered (sender, target) on different instances (with
  // --room-spread together, on the same one: there is no other); then
  // interleaved across rooms so consecutive signals hit different rooms.
  bool together = s_.room_spread == "together";
  std::vector<std::vector<send_pair>> per_room(rooms.size());
  for (std::size_t r = 0; r < rooms.size(); ++r)
    for (auto const& a : rooms[r])
      for (auto const& b : rooms[r])
        if (a != b && (together || a->instance != b->instance) && !a->peer_id.empty() && !b->peer_id.empty())
          per_room[r].push_back(send_pair{a, b->peer_id, r, b->instance});
  std::vector<send_pair> out;
  for (std::size_t k = 0;; ++k) {
    bool any = false;
    for (auto const& pairs : per_room) {
      if (k < pairs.size()) {
        out.push_back(pairs[k]);
        any = true;
      }
    }
    if (!any) break;
  }
  return out;
}

// --- Phases -----------------------------------------------------------------------

void runner::wait_for_server_peers(std::int64_t expected_total, std::chrono::seconds bound) {
  if (instance_urls_.empty()) {
    std::this_thread::sleep_for(s_.settle);
    return;
  }
  auto deadline = steady::now() + bound;
  for (;;) {
    double total = 0;
    for (auto const& [id, values] : metrics_snapshot()) total += metric(values, "sigstream_joined_peers");
    if (static_cast<std::int64_t>(total) <= expected_total) return;
    if (steady::now() >= deadline) {
      progress("warning: instances still report {} joined peers (expected {})", total, expected_total);
      return;
    }
    std::this_thread::sleep_for(200ms);
  }
}

// After an overloaded step the servers may still be delivering its
// signals, or reading rooms back from the stream (a catch-up can take
// seconds and shows only when it ends). Wait until every signal sent so far
// has arrived, or nothing (signals, instance counters) has moved for ten
// seconds, at most 60 s.
void runner::quiesce() {
  auto outstanding = [&] {
    std::uint64_t missing = 0;
    // Refused signals will never arrive: not worth waiting for.
    auto add = [&](rate_step const& step) {
      missing += step.sent > step.received + step.errors ? step.sent - step.received - step.errors : 0;
    };
    for (auto const& step : results_.steps) add(step);
    if (results_.isolation && results_.isolation->step) add(*results_.isolation->step);
    std::lock_guard lock(hub_.mutex);
    std::uint64_t late = 0;
    for (auto const& [step, n] : hub_.late) late += n;
    for (auto const& [step, codes] : hub_.late_refusals)
      for (auto const& [code, n] : codes) late += n;
    return missing > late ? missing - late : 0;
  };
  auto fingerprint = [&] {
    std::vector<double> values{static_cast<double>(hub_.stale_total())};
    for (auto const& [id, m] : metrics_snapshot())
      for (char const* name : {"sigstream_frames_sent_total", "sigstream_catch_ups_total",
                               "sigstream_replayed_events_total", "sigstream_live_messages_received_total"})
        values.push_back(metric(m, name));
    return values;
  };
  auto started = steady::now();
  auto deadline = started + 60s;
  auto last = fingerprint();
  auto quiet_since = steady::now();
  auto waiting = outstanding();
  if (waiting > 0) progress("waiting for {} signals still on their way", waiting);
  while (steady::now() < deadline && outstanding() > 0) {
    std::this_thread::sleep_for(250ms);
    auto now = fingerprint();
    if (now != last) {
      last = std::move(now);
      quiet_since = steady::now();
    } else if (steady::now() - quiet_since >= 10s) {
      progress("nothing moved for 10 s; {} signals count as lost", outstanding());
      return;
    }
  }
  if (waiting > 0 && outstanding() > 0) progress("warning: {} signals still missing after 60 s", outstanding());
  else if (waiting > 0) progress("all arrived after {:.1f} s", std::chrono::duration<double>(steady::now() - started).count());
}

// What the ledger knows of a step's signals, once nothing more will come.
void runner::account_ledger(rate_step& step) {
  std::lock_guard lock(hub_.mutex);
  auto it = hub_.ledgers.find(step.id);
  if (it == hub_.ledgers.end()) return;
  step.ledger = true;
  auto const& ledger = it->second;
  step.duplicates = ledger.duplicates;
  for (std::size_t n = 1; n < ledger.state.size(); ++n) {
    auto state = ledger.state[n];
    bool acked = (state & signal_ledger::acked) != 0, refused = (state & signal_ledger::refused) != 0,
         delivered = (state & signal_ledger::delivered) != 0, unconfirmed = (state & signal_ledger::unconfirmed) != 0;
    step.acked += acked;
    step.refused += refused;
    step.unconfirmed += unconfirmed;
    step.delivered += delivered;
    step.lost_acknowledged += acked && !delivered;
    step.refused_but_delivered += refused && delivered;
    step.unconfirmed_delivered += unconfirmed && delivered;
    step.unanswered_undelivered += !acked && !refused && !unconfirmed && !delivered;
  }
}

// Signals that arrived after their step's drain are late, not lost; the
// refusals that came after it are the step's all the same.
void runner::account_late(rate_step& step) {
  std::lock_guard lock(hub_.mutex);
  if (auto refused = hub_.late_refusals.find(step.id); refused != hub_.late_refusals.end()) {
    for (auto const& [code, n] : refused->second) {
      step.errors += n;
      step.error_codes[code] += n;
    }
    hub_.late_refusals.erase(refused);
  }
  auto it = hub_.late.find(step.id);
  step.late = it == hub_.late.end() ? 0 : it->second;
  step.lost = step.sent > step.received + step.late ? step.sent - step.received - step.late : 0;
}

void runner::memory_phase() {
  memory_figures m;
  m.peers_requested = static_cast<std::uint64_t>(s_.idle_peers);
  progress("memory: {} idle peers, joined to rooms of {}", s_.idle_peers, s_.room_size);
  std::map<std::string, std::uint64_t> before;
  for (auto const& p : processes_)
    if (auto kib = rss_kib(p.pid)) before[p.name] = *kib;
  double joined_before = 0, rooms_before = 0;
  for (auto const& [id, values] : metrics_snapshot()) {
    joined_before += metric(values, "sigstream_joined_peers");
    rooms_before += metric(values, "sigstream_active_rooms");
    // A process reuses heap it freed earlier, so growth on a warm instance
    // understates what a peer costs.
    if (metric(values, "sigstream_connections_total") > 10)
      results_.notes.push_back(fmt::format(
          "memory: instance {} had already served {:.0f} connections; its RSS growth understates the cost of a "
          "peer (measure on freshly started instances)",
          id, metric(values, "sigstream_connections_total")));
  }

  auto peers = connect_peers(static_cast<std::size_t>(s_.idle_peers), connect_targets({}), "memory: connecting");
  m.peers_connected = peers.size();
  room_list rooms;
  for (std::size_t i = 0; i < peers.size(); i += static_cast<std::size_t>(s_.room_size)) {
    std::vector<peer_ptr> room;
    for (std::size_t j = i; j < std::min(peers.size(), i + static_cast<std::size_t>(s_.room_size)); ++j)
      room.push_back(peers[j]);
    rooms.push_back(std::move(room));
  }
  // Join in windows so the joins themselves do not time out.
  constexpr std::size_t window_rooms = 50;
  for (std::size_t start = 0; start < rooms.size(); start += window_rooms) {
    room_list slice(rooms.begin() + static_cast<std::ptrdiff_t>(start),
                    rooms.begin() + static_cast<std::ptrdiff_t>(std::min(rooms.size(), start + window_rooms)));
    std::uint64_t base = hub_.joins.get();
    std::size_t n = 0;
    for (std::size_t r = 0; r < slice.size(); ++r) {
      for (auto const& p : slice[r]) {
        p->joining = true;
        p->join_sent_ns = hub_.now_ns();
        p->client->send(t_.protocol->join(fmt::format("bench-{}-idle-{}", run_id_, start + r), ""));
        ++n;
      }
    }
    hub_.joins.wait_until(base + n, steady::now() + s_.join_timeout + 5s);
  }
  std::map<std::string, std::uint64_t> per_instance;
  for (auto const& p : peers) {
    if (!p->joining && p->join_error.empty() && !p->peer_id.empty()) {
      ++m.peers_joined;
      ++per_instance[p->instance];
    }
  }
  progress("memory: {} connected, {} joined; settling {} ms", m.peers_connected, m.peers_joined, s_.idle_settle.count());
  auto settle_start = steady::now();
  std::this_thread::sleep_for(s_.idle_settle);
  m.settle_seconds = std::chrono::duration<double>(steady::now() - settle_start).count();
  double instance_growth = 0;
  std::uint64_t instance_peers = 0;
  for (auto const& p : processes_) {
    memory_row row;
    row.name = p.name;
    row.role = std::string(to_string(p.role));
    row.instance = p.instance_id;
    row.rss_before_kib = before.count(p.name) ? before[p.name] : 0;
    row.rss_after_kib = rss_kib(p.pid).value_or(0);
    double growth = (static_cast<double>(row.rss_after_kib) - static_cast<double>(row.rss_before_kib)) * 1024.0;
    if (p.role == process_role::instance) {
      row.peers = per_instance.count(p.instance_id) ? per_instance[p.instance_id] : 0;
      instance_growth += growth;
      instance_peers += row.peers;
      if (row.peers > 0) {
        row.bytes_per_peer = growth / static_cast<double>(row.peers);
        m.worst_instance_bytes_per_peer = std::max(m.worst_instance_bytes_per_peer, row.bytes_per_peer);
      }
    } else {
      row.peers = m.peers_joined;
      if (m.peers_joined > 0) row.bytes_per_peer = growth / static_cast<double>(m.peers_joined);
    }
    m.rows.push_back(row);
  }
  if (instance_peers > 0) m.instance_bytes_per_peer = instance_growth / static_cast<double>(instance_peers);
  progress("memory: instances grew {:.0f} bytes per idle peer (worst instance {:.0f})", m.instance_bytes_per_peer,
           m.worst_instance_bytes_per_peer);
  results_.memory = m;
  close_peers(peers, "memory: closing idle peers");
  wait_for_server_peers(static_cast<std::int64_t>(joined_before), 30s);
  // The instances keep following the idle peers' rooms for --room-linger
  // (10 s) and then let go of them all at once: wait for that, so that the
  // next phase (the join burst) is not measured while 1,500 rooms are
  // released beside it.
  if (!instance_urls_.empty()) progress("memory: waiting until the instances let go of the idle peers' rooms (--room-linger)");
  auto deadline = steady::now() + 60s;
  for (double rooms = rooms_before + 1; rooms > rooms_before && steady::now() < deadline;) {
    rooms = 0;
    for (auto const& [id, values] : metrics_snapshot()) rooms += metric(values, "sigstream_active_rooms");
    if (rooms > rooms_before) std::this_thread::sleep_for(500ms);
  }
}

// drop_unsent: what the bench has not written when the schedule ends is
// dropped (and counted as never sent), for a next step that starts at once.
rate_step runner::run_step(std::string kind, double rate, std::chrono::milliseconds duration, room_list const& rooms,
                           std::vector<send_pair> const& pairs, std::chrono::milliseconds drain, bool drop_unsent) {
  rate_step out;
  out.kind = std::move(kind);
  out.rate = rate;
  std::uint64_t step = ++next_step_;
  out.id = step;
  {
    std::lock_guard lock(hub_.mutex);
    hub_.step = step;
    hub_.samples.clear();
    hub_.samples.reserve(static_cast<std::size_t>(rate * std::chrono::duration<double>(duration).count()) + 16);
    hub_.sample_numbers.clear();
    hub_.sample_numbers.reserve(hub_.samples.capacity());
    hub_.errors = 0;
    hub_.error_codes.clear();
    hub_.received = 0;
  }
  std::uint64_t queue_full_before = hub_.counters.queue_full;
  std::uint64_t closes_before = hub_.unexpected_closes;
  auto metrics_before = metrics_snapshot();
  auto cpu_before = cpu_snapshot();
  auto switches_before = switches_snapshot();

  progress("{} {:.0f}/s for {:.1f} s", out.kind, rate, std::chrono::duration<double>(duration).count());
  auto sender = std::make_shared<pacer>(io_, hub_, pairs, rate, duration, step, static_cast<std::size_t>(s_.payload_bytes),
                                        s_.signal_acks);
  hub_.open_ledger(step, sender->total());
  std::uint64_t done_base = hub_.pacer_done.get();
  sender->start();
  if (!hub_.pacer_done.wait_until(done_base + 1, steady::now() + duration + 30s))
    progress("warning: the pacer did not finish in time");
  if (drop_unsent) {
    // A rate the bench itself cannot write leaves its frames queued in the
    // bench (on two cores, most of a 30,000/s overload), and the next step's
    // would wait behind them: the overload would go on for the servers long
    // after its schedule, and the recovery would measure the bench.
    std::set<ws_client*> clients;
    for (auto const& pair : pairs) clients.insert(pair.sender->client.get());
    std::uint64_t base = hub_.unsent_dropped.get();
    std::uint64_t dropped_before = hub_.counters.queue_full;
    hub* h = &hub_;
    for (auto* client : clients) client->drop_unsent([h] { h->unsent_dropped.add(); });
    if (!hub_.unsent_dropped.wait_until(base + clients.size(), steady::now() + 10s))
      progress("warning: {}: the bench's connections did not drop their unsent frames in time", out.kind);
    if (auto n = hub_.counters.queue_full - dropped_before; n > 0)
      progress("{}: dropped {} signals the bench had not written by the end of the schedule", out.kind, n);
  }
  auto sent_at = steady::now();
  out.target = sender->total();
  out.seconds = sender->seconds();
  out.pacer_max_lag_ms = sender->max_lag_ms();
  out.queue_full = hub_.counters.queue_full - queue_full_before;
  out.sent = sender->created() - std::min(sender->created(), out.queue_full);
  // Drain: wait for what is still on its way, bounded.
  auto drain_deadline = sent_at + drain;
  while (hub_.received.load() < out.sent && steady::now() < drain_deadline) std::this_thread::sleep_for(2ms);
  out.drain_ms = std::chrono::duration<double, std::milli>(steady::now() - sent_at).count();
  auto cpu_after = cpu_snapshot();
  auto switches_after = switches_snapshot();
  auto metrics_after = metrics_snapshot();
  std::vector<std::int64_t> samples;
  std::vector<std::uint64_t> numbers;
  {
    std::lock_guard lock(hub_.mutex);
    hub_.step = 0;  // anything later is stale
    samples = std::move(hub_.samples);
    hub_.samples = {};
    numbers = std::move(hub_.sample_numbers);
    hub_.sample_numbers = {};
    out.errors = hub_.errors;
    out.error_codes = hub_.error_codes;
  }
  out.received = samples.size();
  if (hub_.tracing) {
    for (auto const& [n, index, at] : sender->sent_trace()) {
      auto const& pair = pairs[static_cast<std::size_t>(index)];
      fmt::format_to(std::back_inserter(trace_text_), "S {} {} {} {} {} {}\n", step, n, pair.room,
                     pair.sender->instance, pair.target_instance, at);
    }
  }
  out.lost = out.sent > out.received ? out.sent - out.received : 0;
  out.connections_lost = hub_.unexpected_closes - closes_before;
  if (out.kind == "recovery") out.windows = per_second(samples, numbers, rate, out.target);
  out.latency = summarize(std::move(samples));

  // CPU per delivered signal, per process.
  double servers = 0;
  for (auto const& p : processes_) {
    if (!cpu_before.count(p.name) || !cpu_after.count(p.name)) continue;
    process_cpu c{p.name, std::string(to_string(p.role)), cpu_after[p.name] - cpu_before[p.name], 0};
    if (out.received > 0) {
      c.us_per_signal = c.cpu_seconds * 1e6 / static_cast<double>(out.received);
      if (switches_before.count(p.name) && switches_after.count(p.name))
        c.context_switches_per_signal =
            static_cast<double>(switches_after[p.name] - switches_before[p.name]) / static_cast<double>(out.received);
    }
    servers += c.us_per_signal;
    out.cpu.push_back(c);
  }
  out.servers_us_per_signal = servers;
  if (out.received > 0)
    out.bench_us_per_signal = (cpu_after["(bench)"] - cpu_before["(bench)"]) * 1e6 / static_cast<double>(out.received);

  // Traffic per instance against what the rooms' placement implies: every
  // instance with a peer in a room follows that room's events; a targeted
  // signal becomes one frame on the target's instance.
  std::vector<std::set<std::string>> room_instances(rooms.size());
  std::map<std::string, std::uint64_t> peers_on;
  for (std::size_t r = 0; r < rooms.size(); ++r)
    for (auto const& p : rooms[r]) {
      room_instances[r].insert(p->instance);
      ++peers_on[p->instance];
    }
  std::map<std::string, double> live_expected, frames_expected;
  auto const& counts = sender->per_pair();
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    auto n = static_cast<double>(counts[i]);
    for (auto const& instance : room_instances[pairs[i].room]) live_expected[instance] += n;
    frames_expected[pairs[i].target_instance] += n;
  }
  for (auto const& id : known_instances()) {
    instance_traffic t;
    t.instance = id;
    t.peers = peers_on.count(id) ? peers_on[id] : 0;
    t.live_expected = live_expected[id];
    t.frames_expected = frames_expected[id];
    if (metrics_before.count(id) && metrics_after.count(id)) {
      auto delta = [&](char const* name) {
        return metric(metrics_after[id], name) - metric(metrics_before[id], name);
      };
      t.live_received = delta("sigstream_live_messages_received_total");
      t.frames_sent = delta("sigstream_frames_sent_total");
      t.events_appended = delta("sigstream_events_appended_total");
      t.gaps = delta("sigstream_gaps_detected_total");
      t.catch_ups = delta("sigstream_catch_ups_total");
      t.replayed_events = delta("sigstream_replayed_events_total");
      t.slow_consumers = delta("sigstream_slow_consumers_total");
    } else {
      t.live_received = t.frames_sent = t.events_appended = -1;  // not measured
      t.gaps = t.catch_ups = t.replayed_events = t.slow_consumers = -1;
    }
    out.traffic.push_back(t);
  }

  std::vector<std::string> why;
  if (out.sent < out.target)
    why.push_back(fmt::format("{} not sent (bench queue full{})", out.target - out.sent,
                              drop_unsent ? ", or still in it when the schedule ended" : ""));
  if (out.lost > 0) why.push_back(fmt::format("{} not received within the drain", out.lost));
  if (out.errors > 0) why.push_back(fmt::format("{} errors", out.errors));
  if (out.connections_lost > 0) why.push_back(fmt::format("{} connections closed by the server", out.connections_lost));
  double pass_p99_ms = std::chrono::duration<double, std::milli>(s_.lossless_p99).count();
  if (out.latency.count == 0 || out.latency.p99_ms >= pass_p99_ms)
    why.push_back(fmt::format("p99 {:.1f} ms >= {:.0f} ms", out.latency.p99_ms, pass_p99_ms));
  out.pass = why.empty();
  out.verdict = out.pass ? "ok" : fmt::format("{}", fmt::join(why, "; "));
  progress("{} {:.0f}/s: sent {}, received {}, lost {}; p50 {:.2f} ms, p99 {:.2f} ms, max {:.2f} ms; servers {:.0f} "
           "us/signal; {}",
           out.kind, rate, out.sent, out.received, out.lost, out.latency.p50_ms, out.latency.p99_ms,
           out.latency.max_ms, out.servers_us_per_signal, out.verdict);
  return out;
}

void runner::join_and_signal_phases(bool joins_wanted, bool signals_wanted) {
  placement_figures figures;
  auto rooms = build_rooms(static_cast<std::size_t>(s_.rooms), {}, "rooms", figures);
  results_.placement = figures;
  if (!rooms) {
    results_.notes.push_back("no complete room could be formed; join and signal phases skipped");
    return;
  }
  if (joins_wanted) {
    results_.joins.push_back(join_rooms(*rooms, "bench-" + run_id_ + "-seq", true, "joins, sequential"));
    leave_rooms(*rooms);
  }
  results_.joins.push_back(join_rooms(*rooms, "bench-" + run_id_ + "-burst", false, "joins, burst"));
  if (!signals_wanted) {
    std::vector<peer_ptr> flat;
    for (auto const& room : *rooms) flat.insert(flat.end(), room.begin(), room.end());
    close_peers(flat, "closing room peers");
    return;
  }
  auto pairs = make_pairs(*rooms);
  if (pairs.empty()) {
    results_.notes.push_back("no cross-instance pair of joined peers: signal phase skipped (one instance only?)");
  } else {
    progress("signals: {} {} (sender, target) pairs in {} rooms", pairs.size(),
             s_.room_spread == "together" ? "same-instance" : "cross-instance", rooms->size());
    std::vector<double> rates;
    // Checked at start-up (bench.cpp): never nullopt here.
    for (auto rate : parse_rates(s_.rates, highest_signal_rate).value_or(std::vector<std::int64_t>{}))
      rates.push_back(static_cast<double>(rate));
    std::sort(rates.begin(), rates.end());
    rates.erase(std::unique(rates.begin(), rates.end()), rates.end());
    std::optional<double> best, failed;
    bool broken = false;
    int steps = 0;
    auto step = [&](std::string kind, double rate) {
      if (steps > 0) {
        std::this_thread::sleep_for(s_.settle);
        quiesce();
      }
      ++steps;
      auto result = run_step(std::move(kind), rate, s_.duration, *rooms, pairs, s_.drain);
      if (result.connections_lost > 0) broken = true;
      if (result.pass && (!failed || rate < *failed)) best = std::max(best.value_or(0), rate);
      if (!result.pass && (!failed || rate < *failed)) failed = rate;
      results_.steps.push_back(std::move(result));
    };
    for (double rate : rates) {
      if (broken || steps >= max_rate_steps) break;
      step("fixed", rate);
    }
    // Step up past the list until a rate fails, then bisect the gap.
    if (!failed && !broken && !rates.empty() && s_.rate_step > 0) {
      for (double rate = rates.back() + static_cast<double>(s_.rate_step);
           rate <= static_cast<double>(s_.max_rate) && !failed && !broken && steps < max_rate_steps;
           rate += static_cast<double>(s_.rate_step))
        step("search", rate);
    }
    for (std::int64_t i = 0; i < s_.search_steps && best && failed && !broken && steps < max_rate_steps; ++i) {
      double mid = std::round((*best + *failed) / 2 / 250) * 250;
      if (mid <= *best || mid >= *failed) break;
      step("search", mid);
    }
    if (broken) results_.notes.push_back("the server closed bench connections during a step; later steps were skipped");
    results_.max_lossless_rate = best;
    results_.first_failed_rate = failed;
    if (s_.overload && broken) results_.notes.push_back("overload step skipped: the cluster was already broken");
    else if (s_.overload) overload_phase(*rooms, pairs);
    // Signals still on their way (after an overload, many) can arrive only
    // while their targets are connected: closing first would make signals
    // acknowledged but not yet delivered look lost.
    quiesce();
  }
  std::vector<peer_ptr> flat;
  for (auto const& room : *rooms) flat.insert(flat.end(), room.begin(), room.end());
  close_peers(flat, "closing room peers");
}

// --overload: the rate for --overload-duration, then at once the recovery
// rate. Judged afterwards: what was refused, whether anything acknowledged
// was lost (after the run's last wait), how soon every second was back to
// full delivery with p99 under 5 ms, and whether an instance was taken for
// dead or a server process went away.
void runner::overload_phase(room_list const& rooms, std::vector<send_pair> const& pairs) {
  overload_figures o;
  if (s_.overload_rate > 0) {
    o.rate = static_cast<double>(s_.overload_rate);
    o.rate_source = "--overload-rate";
  } else if (results_.max_lossless_rate) {
    o.rate = std::min(200'000.0, 3 * *results_.max_lossless_rate);
    o.rate_source = fmt::format("3 x the highest lossless rate of this run ({:.0f}/s)", *results_.max_lossless_rate);
  } else {
    results_.notes.push_back("overload step skipped: no rate was lossless in this run (give --overload-rate)");
    return;
  }
  std::this_thread::sleep_for(s_.settle);
  quiesce();
  auto metrics_before = metrics_snapshot();
  std::uint64_t closes_before = hub_.unexpected_closes;
  progress("overload: {:.0f}/s ({}) for {:.0f} s, then {}/s for {:.0f} s", o.rate, o.rate_source,
           std::chrono::duration<double>(s_.overload_duration).count(), s_.recovery_rate,
           std::chrono::duration<double>(s_.recovery_duration).count());
  // No drain after the overload: the recovery starts as soon as the
  // overload's schedule ends, and what arrives later counts as late. What
  // the bench had not written by then is dropped, so the overload ends for
  // the servers when it ends for the report.
  auto overload = run_step("overload", o.rate, s_.overload_duration, rooms, pairs, std::chrono::milliseconds(0), true);
  overload.pass = false;
  overload.verdict = "see the overload summary";
  auto recovery = run_step("recovery", static_cast<double>(s_.recovery_rate), s_.recovery_duration, rooms, pairs, s_.drain);
  o.overload_step = overload.id;
  o.recovery_step = recovery.id;
  o.back_to_normal_seconds = back_to_normal(recovery.windows, recovered_p99_ms);
  o.connections_closed = hub_.unexpected_closes - closes_before;
  results_.steps.push_back(std::move(overload));
  results_.steps.push_back(std::move(recovery));

  if (t_.instance_metrics) {
    auto metrics_after = metrics_snapshot();
    o.instances = instance_urls_.size();
    if (!metrics_after.empty()) o.expired_peers = o.fewest_instances_alive = 0;
    for (auto const& [id, values] : metrics_after) {
      if (metrics_before.count(id))
        o.expired_peers += metric(values, R"(sigstream_peers_expired_total{reason="instance_dead"})") -
                           metric(metrics_before[id], R"(sigstream_peers_expired_total{reason="instance_dead"})");
      double alive = metric(values, "sigstream_instances_alive");
      if (o.fewest_instances_alive == 0 || alive < o.fewest_instances_alive) o.fewest_instances_alive = alive;
    }
    for (auto const& [id, url] : instance_urls_)
      if (!metrics_after.count(id)) o.processes_gone.push_back(id + " (no /metrics answer)");
    // Signs of how the instances coped. The last two exist only in builds
    // that bound appends in flight (--max-appends-in-flight).
    for (char const* name : {"sigstream_append_failures_total", "sigstream_rate_limited_total",
                             "sigstream_slow_consumers_total", "sigstream_gaps_detected_total",
                             "sigstream_catch_ups_total", "sigstream_appends_refused_for_load_total",
                             "sigstream_append_retries_total"}) {
      for (auto const& [id, values] : metrics_after) {
        if (!values.count(name)) continue;
        double before = metrics_before.count(id) ? metric(metrics_before[id], name) : 0;
        o.instance_counters[name] += values.at(name) - before;
      }
    }
  }
  for (auto const& p : processes_)
    if (!cpu_seconds(p.pid)) o.processes_gone.push_back(fmt::format("{} (pid {})", p.name, p.pid));
  results_.overload = std::move(o);
}

void runner::isolation_phase() {
  auto instances = known_instances();
  if (instance_urls_.size() < 2 || instances.size() < 2) {
    results_.notes.push_back("isolation phase skipped: it needs the /metrics of at least two instances");
    return;
  }
  quiesce();
  isolation_figures iso;
  std::set<std::string> allowed;
  std::vector<std::string> sorted(instances.begin(), instances.end());
  iso.excluded_instances.push_back(sorted.back());
  for (std::size_t i = 0; i + 1 < sorted.size(); ++i) {
    allowed.insert(sorted[i]);
    iso.used_instances.push_back(sorted[i]);
  }
  progress("isolation: rooms only on {}; {} should receive nothing", fmt::join(iso.used_instances, ", "),
           sorted.back());
  auto rooms = build_rooms(static_cast<std::size_t>(s_.isolation_rooms), allowed, "isolation rooms", iso.placement);
  if (rooms) {
    join_rooms(*rooms, "bench-" + run_id_ + "-iso", false, "isolation joins");
    auto pairs = make_pairs(*rooms);
    if (!pairs.empty()) {
      std::this_thread::sleep_for(s_.settle);
      iso.step =
          run_step("isolation", static_cast<double>(s_.isolation_rate), s_.isolation_duration, *rooms, pairs, s_.drain);
    }
    std::vector<peer_ptr> flat;
    for (auto const& room : *rooms) flat.insert(flat.end(), room.begin(), room.end());
    close_peers(flat, "closing isolation peers");
  }
  results_.isolation = std::move(iso);
}

int runner::run() {
  if (!setup()) return 2;
  hub_.tracing = !s_.trace_path.empty();
  auto phases = split_list(s_.phases);
  auto wanted = [&](std::string_view name) { return std::find(phases.begin(), phases.end(), name) != phases.end(); };

  // Is anything there at all?
  auto probe = connect_peers(1, connect_targets({}), "probe");
  if (probe.empty()) {
    std::cerr << "sigstream-bench: cannot open a WebSocket to " << (s_.placement == "direct" ? "the instances" : t_.url)
              << "; is the cluster running?\n";
    return 1;
  }
  close_peers(probe, "probe");

  if (wanted("memory")) {
    if (processes_.empty()) results_.notes.push_back("memory phase skipped: no server pids");
    else if (s_.idle_peers > 0) memory_phase();
  }
  if (wanted("join") || wanted("signal")) join_and_signal_phases(wanted("join"), wanted("signal"));
  if (wanted("isolation")) isolation_phase();
  if (hub_.bad_frames > 0) results_.notes.push_back(fmt::format("{} frames from the server were not JSON objects", hub_.bad_frames.load()));
  if (hub_.unexpected_closes > 0) {
    std::lock_guard lock(hub_.mutex);
    results_.notes.push_back(fmt::format("{} connections were closed by the server (first: {})",
                                         hub_.unexpected_closes.load(), hub_.first_close_reason));
  }
  quiesce();
  for (auto& step : results_.steps) {
    account_late(step);
    account_ledger(step);
  }
  if (hub_.tracing) {
    std::lock_guard lock(hub_.mutex);
    for (auto const& [step, n, at] : hub_.trace) fmt::format_to(std::back_inserter(trace_text_), "R {} {} {}\n", step, n, at);
    std::ofstream out(s_.trace_path, std::ios::trunc);
    // The times count from the bench's start; the start's CLOCK_MONOTONIC
    // (libstdc++'s steady_clock) lines them up with `perf record -k mono`.
    out << "# S step n room sender_instance target_instance sent_ns | R step n received_ns\n"
        << fmt::format("# start CLOCK_MONOTONIC ns {}\n",
                       std::chrono::duration_cast<std::chrono::nanoseconds>(hub_.epoch.time_since_epoch()).count())
        << trace_text_;
    if (!out) progress("warning: cannot write {}", s_.trace_path);
  }
  if (results_.isolation && results_.isolation->step) {
    account_late(*results_.isolation->step);
    account_ledger(*results_.isolation->step);
  }
  // Whatever is still open goes now.
  std::vector<peer_ptr> open;
  for (auto const& p : all_peers_)
    if (p->status == 1) open.push_back(p);
  close_peers(open, "closing");
  return 0;
}

}  // namespace

int run(bench_settings const& settings, system_target const& target, bench_results& results) {
  progress_prefix = fmt::format("bench [{}]: ", target.name);
  results.system = target.name;
  results.target_url = target.url;
  runner r(settings, target, results);
  return r.run();
}

}  // namespace sig::bench
