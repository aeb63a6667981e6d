// SPDX-License-Identifier: GPL-2.0
/* Runner fast path, TC ingress of vxlan0 (what the hub sends after decapsulation): a packet the
 * hub routed to a fast-path workload of this runner goes straight into the workload's namespace
 * (lib/workload_deliver.h) instead of through the bridge, the IP stack and the bridge again.
 * The forward filter's rules decide first (lib/forward_policy.h); what they refuse, and
 * everything else (ARP, frames switched to other MACs, workloads not on the fast path), goes on
 * to the bridge untouched, where runner_forward_filter decides and counts as before.
 */
#include "lib/forward_policy.h"
#include "lib/pkt.h"
#include "lib/workload_deliver.h"

SEC("tc")
int runner_overlay_ingress(struct __sk_buff* skb) {
  const struct runner_config* cfg = runner_get_config();
  const struct runner_wl* w;
  struct pkt_hdrs h;
  __u32 ifindex = 0;
  struct pkt p;
  int rc;

  if (!cfg || pkt_parse_l3(skb, &h) != PKT_PARSE_OK) return TC_ACT_OK;
  if (pkt_ipv4_has_options(h.ip) || pkt_ipv4_is_fragment(h.ip)) return TC_ACT_OK;
  w = rn_wl_by_addr(h.ip->daddr, &ifindex);
  /* Only what is routed to the runner (to the gateway's MAC); the rest is switched. */
  if (!w || !kh_mac_equal(h.eth->h_dest, w->gw_mac)) return TC_ACT_OK;
  if (pkt_parse_l4(skb, &p) != PKT_PARSE_OK || rn_forward_verdict(skb, cfg, &p) != RN_FWD_ALLOW)
    return TC_ACT_OK;
  rc = rn_wl_deliver(skb, w, ifindex);
  return rc == TC_ACT_REDIRECT ? rc : TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
