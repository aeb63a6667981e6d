/* Named L2 network member, TC egress of vxlan<VNI>: keeps what belongs to the distributed
 * gateway on this runner (see lib/l2_gateway_types.h for why). The program sees the inner Ethernet
 * frame before encapsulation. Everything else - workload traffic, ARP between workloads,
 * unicast from the gateway - goes to the peers untouched. A device without an entry in
 * l2_gateways passes everything, so a guard left on a device by a previous daemon is harmless.
 */
#include "lib/common.h"
#include "lib/l2_gateway_maps.h"

#define L2_ARP_REQUEST 1

/* Ethernet/IPv4 ARP as on the wire (linux/if_arp.h stops before the addresses). */
struct l2_arp_ipv4 {
  __be16 htype;
  __be16 ptype;
  __u8 hlen;
  __u8 plen;
  __be16 op;
  __u8 sha[6];
  __u8 spa[4];
  __u8 tha[6];
  __u8 tpa[4];
} __attribute__((packed));

SEC("tc")
int l2_gateway_guard(struct __sk_buff* skb) {
  struct l2_gateway_key key = {.ifindex = skb->ifindex};
  struct l2_gateway* gw = bpf_map_lookup_elem(&l2_gateways, &key);
  __u32 zero = 0;
  struct l2_guard_stats* stats = bpf_map_lookup_elem(&l2_guard_stats, &zero);
  void* data = (void*)(long)skb->data;
  void* data_end = (void*)(long)skb->data_end;
  struct ethhdr* eth = data;

  if (!gw) return TC_ACT_OK;
  if ((void*)(eth + 1) > data_end) return TC_ACT_OK;
  if ((eth->h_dest[0] & 1) && kh_mac_equal(eth->h_source, gw->mac)) {
    if (stats) stats->gateway_floods_kept_local++;
    return TC_ACT_SHOT;
  }
  if (eth->h_proto == bpf_htons(ETH_P_ARP)) {
    struct l2_arp_ipv4* arp = (void*)(eth + 1);

    if ((void*)(arp + 1) <= data_end && arp->ptype == bpf_htons(ETH_P_IP) && arp->plen == 4 &&
        arp->op == bpf_htons(L2_ARP_REQUEST) &&
        *(const __u32*)arp->tpa == *(const __u32*)gw->addr) {
      if (stats) stats->gateway_arp_kept_local++;
      return TC_ACT_SHOT;
    }
  }
  if (stats) stats->passed++;
  return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
