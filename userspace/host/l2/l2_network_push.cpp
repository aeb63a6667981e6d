#include "host/l2/l2_network_push.h"

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

#include "common/http_client.h"
#include "common/http_router.h"
#include "common/log.h"

namespace kohaku {
namespace {

constexpr std::string_view kLog = "l2-push";
constexpr auto kFirstRetry = std::chrono::milliseconds(200);
constexpr auto kMaxRetry = std::chrono::seconds(5);
constexpr int kMaxAttempts = 30;  // ~2 minutes; the runners' poll takes over after that
constexpr auto kTimeout = std::chrono::milliseconds(1500);
constexpr size_t kMaxParallel = 16;  // pushes in flight at once

}  // namespace

L2NetworkPush::L2NetworkPush(const L2NetworkRegistry& registry, L2RunnerLookup lookup,
                             std::string token)
    : registry_(registry), lookup_(std::move(lookup)), token_(std::move(token)) {
  thread_ = std::thread([this] { run(); });
}

L2NetworkPush::~L2NetworkPush() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void L2NetworkPush::on_change(const L2Change& change) {
  {
    std::lock_guard lock(mu_);
    const auto now = std::chrono::steady_clock::now();
    for (const auto& runner : change.runners) pending_[{runner, change.network}] = {now, 0};
  }
  cv_.notify_all();
}

bool L2NetworkPush::send(const Key& key) const {
  const auto& [runner, network] = key;
  auto info = lookup_(runner);
  if (!info) return true;  // not registered: it asks for its networks when it registers
  http::ClientOptions options;
  options.timeout = kTimeout;
  // The runner accepts its own credential (which the host issued) or the cluster token; the
  // credential also works where the runner was given no token (docs/security.md).
  options.bearer_token = info->credential.empty() ? token_ : info->credential;
  const std::string target = "/api/l2/networks/" + http::percent_encode(network);
  try {
    http::HttpClient client(info->url, options);
    auto view = registry_.runner_view(network, runner);
    auto r = view ? client.put(target, view->to_json())
                  : client.del(target + "?revision=" + std::to_string(registry_.revision()));
    if (r.ok() || (!view && r.status == 404)) return true;
    log::warn(kLog, std::string(view ? "PUT " : "DELETE ") + target + " on '" + runner +
                        "' answered " + std::to_string(r.status) + ": " + r.error_message());
  } catch (const std::exception& e) {
    log::warn(kLog,
              "cannot reach runner '" + runner + "' for network '" + network + "': " + e.what());
  }
  return false;
}

void L2NetworkPush::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    if (stopping_) return;
    if (pending_.empty()) {
      cv_.wait(lock);
      continue;
    }
    auto next =
        std::min_element(pending_.begin(), pending_.end(), [](const auto& a, const auto& b) {
          return a.second.due < b.second.due;
        })->second.due;
    const auto now = std::chrono::steady_clock::now();
    if (next > now) {
      cv_.wait_until(lock, next);
      continue;
    }
    std::vector<std::pair<Key, int>> batch;
    for (auto it = pending_.begin(); it != pending_.end();) {
      if (it->second.due <= now) {
        batch.emplace_back(it->first, it->second.attempts);
        it = pending_.erase(it);
      } else {
        ++it;
      }
    }
    lock.unlock();
    // In parallel, so one unreachable runner does not hold up the others' updates, but on at
    // most kMaxParallel threads: a change to a network of 255 runners is not 255 threads.
    std::vector<char> ok(batch.size(), 0);
    std::atomic<size_t> next_send{0};
    auto worker = [&] {
      for (size_t i; (i = next_send++) < batch.size();) ok[i] = send(batch[i].first) ? 1 : 0;
    };
    std::vector<std::thread> workers;
    for (size_t i = 1; i < std::min(batch.size(), kMaxParallel); ++i) workers.emplace_back(worker);
    worker();
    for (auto& t : workers) t.join();
    lock.lock();
    for (size_t i = 0; i < batch.size(); ++i) {
      const auto& [key, attempts] = batch[i];
      // A change that arrived meanwhile is already queued (due now) and wins.
      if (ok[i] || pending_.count(key)) continue;
      if (attempts + 1 >= kMaxAttempts) {
        log::warn(kLog, "giving up pushing network '" + key.second + "' to runner '" + key.first +
                            "'; it picks the change up from its next poll");
        continue;
      }
      auto delay = std::min<std::chrono::milliseconds>(kFirstRetry * (1 << std::min(attempts, 5)),
                                                       kMaxRetry);
      pending_[key] = {std::chrono::steady_clock::now() + delay, attempts + 1};
    }
  }
}

}  // namespace kohaku
