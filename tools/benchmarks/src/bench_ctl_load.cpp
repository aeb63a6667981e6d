// bench_ctl_load: control-plane load against a running kohaku-hostd, through the project's own
// HTTP client (one connection per request, as kohakuctl and the runners use it); `reserve` keeps
// one connection per client, as a scheduler's HTTP pool does, on Asio (ctl_async_load.h).
//
//   bench_ctl_load reserve  --url U --runner NAME [--runner NAME...] --clients 64 --seconds S
//                           [--threads 1]
//       clients reserve IPs (ttl 1800) in a loop for S seconds, each on one kept connection and
//       waiting for its answer before the next request, all driven by --threads event loops:
//       reservations/s, p50/p99 latency; then releases them again (untimed)
//   bench_ctl_load register --url U --count 255 --ip-prefix 198.19 --clients C
//       registers bench-r001..bench-rNNN (physical IPs <prefix>.x.y): wall time until all answered
//   bench_ctl_load fill     --url U --count 255 --reservations 10000 --clients C
//       spreads reservations over bench-r001..: state for the restart measurement
//   bench_ctl_load wait-serving --url U --timeout S [--min-reservations N]
//       polls /api/overlay/ip/stats every 2 ms; prints the seconds until it answered
//   bench_ctl_load wait-tunnels --count N --timeout S [--program 1]
//       (in the hub's namespace) polls until N vxkr devices exist and, with --program 1, each
//       carries host_forward on its TC ingress; prints the seconds until then. One link dump
//       per poll and one filter query per device until it is seen ready (bpftool net show asks
//       for every qdisc of the namespace per device: minutes with thousands of devices)
//
// Every mode prints one line of key=value pairs; any failed request is counted, never hidden.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench_cli.h"
#include "common/http_client.h"
#include "common/netlink/vxlan_link.h"
#include "ctl_async_load.h"
#include "ctl_load_tally.h"
#include "host/bpf/host_datapath.h"

namespace {

using clock_type = std::chrono::steady_clock;
using kohaku::http::HttpClient;

struct Args {
  std::string mode, url;
  std::vector<std::string> runners;
  int clients = 64;
  double seconds = 3;
  int count = 255;
  std::string ip_prefix = "198.19";
  int reservations = 10000;
  double timeout = 30;
  long min_reservations = 0;
  bool program = false;
  int threads = 1;
};

// The host's mutating routes need its API token (docs/security.md): from $KOHAKU_TOKEN, as
// kohakuctl takes it.
HttpClient client_for(const Args& a, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  kohaku::http::ClientOptions options;
  options.timeout = timeout;
  if (const char* t = std::getenv("KOHAKU_TOKEN")) options.bearer_token = t;
  return HttpClient(a.url, options);
}

Args parse(int argc, char** argv) {
  if (argc < 2) throw std::invalid_argument("usage: bench_ctl_load MODE --url URL ...");
  Args a;
  a.mode = argv[1];
  for (const auto& [k, v] : kohaku::bench::option_pairs(argc, argv, 2)) {
    if (k == "--url")
      a.url = v;
    else if (k == "--runner")
      a.runners.push_back(v);
    else if (k == "--clients")
      a.clients = std::stoi(v);
    else if (k == "--seconds")
      a.seconds = std::stod(v);
    else if (k == "--count")
      a.count = std::stoi(v);
    else if (k == "--ip-prefix")
      a.ip_prefix = v;
    else if (k == "--reservations")
      a.reservations = std::stoi(v);
    else if (k == "--timeout")
      a.timeout = std::stod(v);
    else if (k == "--min-reservations")
      a.min_reservations = std::stol(v);
    else if (k == "--threads")
      a.threads = std::stoi(v);
    else if (k == "--program")
      a.program = v == "1";

    else
      throw std::invalid_argument("unknown option " + k);
  }
  if (a.url.empty() && a.mode != "wait-tunnels") throw std::invalid_argument("--url is required");
  if (a.clients < 1 || a.count < 1 || a.count > 65000)
    throw std::invalid_argument("--clients and --count must be positive (count <= 65000)");
  return a;
}

std::string runner_name(int i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "bench-r%03d", i);
  return buf;
}

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

using kohaku::bench::Tally;

// Runs `clients` threads; each calls `job(thread, n)` until it returns false (n counts its calls)
// and records the latency of every call that returned true.
template <typename Job>
double run_clients(int clients, Tally& tally, Job job) {
  auto t0 = clock_type::now();
  std::vector<std::thread> threads;
  for (int t = 0; t < clients; ++t) {
    threads.emplace_back([&, t] {
      std::vector<double> local;
      long fails = 0;
      std::string err;
      for (long n = 0;; ++n) {
        auto s = clock_type::now();
        std::string problem;
        bool more = false;
        try {
          more = job(t, n, problem);
        } catch (const std::exception& e) {
          problem = e.what();
          more = true;
        }
        if (!problem.empty()) {
          ++fails;
          if (err.empty()) err = problem;
          if (!more) break;
          continue;
        }
        if (!more) break;
        local.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - s).count());
      }
      tally.add(local, fails, err);
    });
  }
  for (auto& th : threads) th.join();
  return seconds_since(t0);
}

void print_tally(const char* what, Tally& tally, double wall) {
  std::printf("%s=%zu per_s=%.1f p50_ms=%.2f p99_ms=%.2f failures=%ld wall_s=%.3f%s%s\n", what,
              tally.ms.size(), static_cast<double>(tally.ms.size()) / wall, tally.percentile(0.5),
              tally.percentile(0.99), tally.failures, wall,
              tally.first_error.empty() ? "" : " first_error=",
              tally.first_error.empty() ? "" : ("'" + tally.first_error + "'").c_str());
}

// Reserves for a.seconds, then releases what it reserved (untimed), so every round measures
// against the same number of existing reservations. The clients are a.clients kept connections
// (as a scheduler's HTTP pool holds them, KohakuRiver's host uses httpx: what is measured is the
// reservation, not a TCP handshake per request), each waiting for its answer before it sends
// the next request, driven by a.threads event loops (ctl_async_load.h).
int reserve(const Args& a) {
  if (a.runners.empty()) throw std::invalid_argument("reserve needs --runner");
  kohaku::bench::AsyncLoad load;
  load.url = a.url;
  if (const char* t = std::getenv("KOHAKU_TOKEN")) load.bearer_token = t;
  load.connections = a.clients;
  load.threads = a.threads;
  std::mutex tokens_mu;
  std::vector<std::string> tokens;
  auto deadline = clock_type::now() + std::chrono::duration<double>(a.seconds);
  load.next = [&](int c, long n) -> std::optional<std::string> {
    if (clock_type::now() >= deadline) return std::nullopt;
    const auto& runner = a.runners[static_cast<size_t>(c + n) % a.runners.size()];
    return "/api/overlay/ip/reserve?runner=" + runner + "&ttl=1800";
  };
  load.check = [&](int status, const std::string& body) -> std::string {
    if (status != 200) return "HTTP " + std::to_string(status) + ": " + body;
    auto token = nlohmann::json::parse(body, nullptr, false);
    if (!token.is_object() || !token.contains("token")) return "no token in " + body;
    std::lock_guard lock(tokens_mu);
    tokens.push_back(token["token"].get<std::string>());
    return {};
  };
  Tally tally;
  double wall = kohaku::bench::run_async_load(load, tally);
  print_tally("reservations", tally, wall);

  std::atomic<size_t> next{0};
  load.next = [&](int, long) -> std::optional<std::string> {
    size_t i = next++;
    if (i >= tokens.size()) return std::nullopt;
    return "/api/overlay/ip/release?token=" + tokens[i];
  };
  load.check = [](int status, const std::string& body) -> std::string {
    return status == 200 ? std::string() : "release HTTP " + std::to_string(status) + ": " + body;
  };
  Tally released;
  kohaku::bench::run_async_load(load, released);
  if (released.failures) {
    std::fprintf(stderr, "bench_ctl_load: %ld releases failed: %s\n", released.failures,
                 released.first_error.c_str());
    return 1;
  }
  return tally.ms.empty() ? 1 : 0;
}

int register_runners(const Args& a) {
  HttpClient client = client_for(a);
  Tally tally;
  std::atomic<int> next{1};
  double wall = run_clients(a.clients, tally, [&](int, long, std::string& problem) {
    int i = next++;
    if (i > a.count) return false;
    nlohmann::json body = {{"hostname", runner_name(i)},
                           {"url", "http://" + a.ip_prefix + "." + std::to_string(i / 250) + "." +
                                       std::to_string(i % 250 + 1) + ":8001"}};
    auto r = client.post("/api/register", body);
    if (!r.ok()) problem = "HTTP " + std::to_string(r.status) + ": " + r.error_message();
    return true;
  });
  print_tally("registered", tally, wall);
  return tally.failures == 0 ? 0 : 1;
}

int fill(const Args& a) {
  HttpClient client = client_for(a);
  Tally tally;
  std::atomic<int> next{0};
  double wall = run_clients(a.clients, tally, [&](int, long, std::string& problem) {
    int i = next++;
    if (i >= a.reservations) return false;
    auto r =
        client.post("/api/overlay/ip/reserve?runner=" + runner_name(i % a.count + 1) + "&ttl=1800");
    if (!r.ok()) problem = "HTTP " + std::to_string(r.status) + ": " + r.error_message();
    return true;
  });
  print_tally("reserved", tally, wall);
  return tally.failures == 0 ? 0 : 1;
}

int wait_serving(const Args& a) {
  auto t0 = clock_type::now();
  HttpClient client = client_for(a, std::chrono::milliseconds(2000));
  std::string last = "no answer";
  while (seconds_since(t0) < a.timeout) {
    try {
      auto r = client.get("/api/overlay/ip/stats");
      if (r.ok()) {
        double answered = seconds_since(t0);
        long total = r.json().value("total_reservations", -1L);
        if (total < 0) total = r.json().value("reservations", -1L);
        if (a.min_reservations == 0 || total >= a.min_reservations) {
          std::printf("serving_s=%.3f reservations=%ld\n", answered, total);
          return 0;
        }
        last = "answered with " + std::to_string(total) + " reservations";
      } else {
        last = "HTTP " + std::to_string(r.status);
      }
    } catch (const std::exception& e) {
      last = e.what();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  std::fprintf(stderr, "bench_ctl_load: not serving after %.0fs: %s\n", a.timeout, last.c_str());
  return 1;
}

int wait_tunnels(const Args& a) {
  auto t0 = clock_type::now();
  std::set<int> ready;  // ifindexes seen complete: asked once each
  size_t devices = 0;
  while (seconds_since(t0) < a.timeout) {
    auto links = kohaku::netlink::list_vxlans("vxkr");
    devices = links.size();
    for (const auto& l : links)
      if (!ready.count(l.link.ifindex) &&
          (!a.program || kohaku::bpf::host_forward_program(static_cast<uint32_t>(l.link.ifindex))))
        ready.insert(l.link.ifindex);
    if (devices >= static_cast<size_t>(a.count) && ready.size() >= static_cast<size_t>(a.count)) {
      std::printf("tunnels=%zu ready_s=%.3f\n", devices, seconds_since(t0));
      return 0;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  std::fprintf(stderr, "bench_ctl_load: after %.0fs %zu vxkr devices, %zu ready (want %d)\n",
               a.timeout, devices, ready.size(), a.count);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  return kohaku::bench::report_failures(
      "bench_ctl_load",
      [&] {
        Args a = parse(argc, argv);
        if (a.mode == "reserve") return reserve(a);
        if (a.mode == "register") return register_runners(a);
        if (a.mode == "fill") return fill(a);
        if (a.mode == "wait-serving") return wait_serving(a);
        if (a.mode == "wait-tunnels") return wait_tunnels(a);
        throw std::invalid_argument("unknown mode " + a.mode);
      },
      2);
}
