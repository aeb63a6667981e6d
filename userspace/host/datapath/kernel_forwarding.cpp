#include "host/datapath/kernel_forwarding.h"

#include "common/netlink/sysctl.h"

namespace kohaku {

KernelForwarding::KernelForwarding(std::string iptables)
    : rules_(kForwardRuleComment, {{"filter", "FORWARD"}}, "kernel-path", std::move(iptables)) {}

void KernelForwarding::install(const Ipv4Cidr& overlay) {
  std::vector<IptablesRule> wanted;
  // At the top of FORWARD (-I FORWARD 1 and 2, as KohakuRiver's docs show): a DROP or REJECT
  // rule further down, as firewalls and Docker hosts have, then cannot shadow them.
  int position = 0;
  for (const char* dir : {"-s", "-d"}) {
    IptablesRule rule{"filter", "FORWARD", {dir, overlay.to_string()}, ++position};
    for (auto& word : rules_.comment_match()) rule.spec.push_back(std::move(word));
    rule.spec.insert(rule.spec.end(), {"-j", "ACCEPT"});
    wanted.push_back(std::move(rule));
  }
  rules_.ensure(wanted);
  // Last, so a failure above leaves the host as it was.
  netlink::ensure_sysctl("net.ipv4.ip_forward", "1");  // logs when it changes
}

size_t KernelForwarding::remove_all() {
  return rules_.remove_all();
}

std::vector<std::string> KernelForwarding::rules() {
  return rules_.rules();
}

}  // namespace kohaku
