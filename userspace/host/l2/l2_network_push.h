#pragma once
// Tells member runners about L2 network changes as they happen: for every (runner, network)
// whose view changed it sends the runner's current view (PUT /api/l2/networks/{name}) or, when
// the runner is no longer a member, DELETE. Level-triggered: what is sent is read from the
// registry at send time, so a burst of changes collapses into one up-to-date call, and a failed
// call is retried with backoff (200 ms doubling to 5 s, for about two minutes). Runners also
// poll GET /api/networks?runner= every heartbeat, which covers whatever this misses.
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "host/l2/l2_networks.h"

namespace kohaku {

class L2NetworkPush {
 public:
  // `registry` must outlive this object. The worker thread starts at once.
  L2NetworkPush(const L2NetworkRegistry& registry, L2RunnerLookup lookup, std::string token);
  ~L2NetworkPush();
  L2NetworkPush(const L2NetworkPush&) = delete;
  L2NetworkPush& operator=(const L2NetworkPush&) = delete;

  void on_change(const L2Change& change);

 private:
  using Key = std::pair<std::string, std::string>;  // runner, network
  struct Pending {
    std::chrono::steady_clock::time_point due;
    int attempts = 0;
  };
  void run();
  bool send(const Key& key) const;  // true: done (delivered, or nothing to deliver to)

  const L2NetworkRegistry& registry_;
  L2RunnerLookup lookup_;
  std::string token_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<Key, Pending> pending_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace kohaku
