#include "runner/datapath/masquerade_iptables.h"

namespace kohaku::runner {
namespace {

void add_rules(std::vector<IptablesRule>& out, const std::vector<std::string>& comment,
               const Ipv4Cidr& net, bool masquerade) {
  const std::string cidr = net.to_string();
  auto with = [&](std::vector<std::string> head, std::vector<std::string> tail) {
    head.insert(head.end(), comment.begin(), comment.end());
    head.insert(head.end(), tail.begin(), tail.end());
    return head;
  };
  out.push_back({"filter", "FORWARD", with({"-s", cidr}, {"-j", "ACCEPT"})});
  out.push_back({"filter", "FORWARD", with({"-d", cidr}, {"-j", "ACCEPT"})});
  if (masquerade)
    out.push_back(
        {"nat", "POSTROUTING", with({"-s", cidr, "!", "-d", cidr}, {"-j", "MASQUERADE"})});
}

}  // namespace

MasqueradeIptables::MasqueradeIptables(std::string iptables)
    : rules_(kRunnerRuleComment, {{"filter", "FORWARD"}, {"nat", "POSTROUTING"}}, "kernel-path",
             std::move(iptables)) {}

void MasqueradeIptables::install(const Ipv4Cidr& overlay,
                                 const std::vector<IptablesNetwork>& named) {
  std::vector<IptablesRule> wanted;
  const auto comment = rules_.comment_match();
  add_rules(wanted, comment, overlay, true);
  for (const auto& n : named) add_rules(wanted, comment, n.subnet, n.outbound_nat);
  rules_.ensure(wanted);
}

size_t MasqueradeIptables::remove_all() {
  try {
    return rules_.remove_all();
  } catch (const IptablesMissing&) {
    return 0;  // normal on a BPF-only runner: no binary, so no rules of ours
  }
}

std::vector<std::string> MasqueradeIptables::rules() {
  return rules_.rules();
}

}  // namespace kohaku::runner
