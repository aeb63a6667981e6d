#pragma once
// Where the fast path learns its workloads (fast_path.h): the daemon's own namespace workloads,
// and Docker's containers on the kohaku bridges (the overlay's Docker network and each named
// network's). Both need the MAC of the namespace side of the veth, and Docker's also the host
// side, which only the container's namespace knows (its interface's IFLA_LINK). The daemon's own
// workloads are few and may change their MAC: it is read in their namespace on every pass.
// Docker assigns its containers' MACs and reports them: a container's veth is looked up once and
// kept while Docker reports the same endpoint with the same MAC. The MAC alone does not do: Docker
// derives it from the address, so a restarted container comes back with its MAC on a new veth
// (and a new endpoint).
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "runner/datapath/fast_path.h"
#include "runner/docker/docker_client.h"
#include "runner/workloads/workload_store.h"

namespace kohaku::runner {

// The fast path's view of the daemon's own `workloads`; one whose namespace cannot be read is
// left out (it keeps the bridge path).
std::vector<FastPathWorkload> own_fast_path_workloads(const std::vector<Workload>& workloads);

class DockerWorkloadFinder {
 public:
  explicit DockerWorkloadFinder(std::string docker_socket) : docker_(std::move(docker_socket)) {}

  // The containers Docker has on networks whose bridge is one of `bridges`; none when no Docker
  // answers. Never throws: a call that fails halfway gives nullopt (the caller keeps what it had:
  // a partial list would take the fast path from the containers it missed).
  std::optional<std::vector<FastPathWorkload>> find(const std::set<std::string>& bridges);

 private:
  struct Found {
    std::string endpoint;  // Docker's EndpointID: a new one for every start of the container
    netlink::MacAddr mac;
    std::string host_veth;
  };
  DockerClient docker_;
  std::map<std::string, Found> cache_;  // "<container>/<network>" -> its veth
};

}  // namespace kohaku::runner
