/* VXLAN (RFC 7348) over IPv4/UDP as it arrives at the hub: the outer headers, the VXLAN header
 * and the inner Ethernet + IPv4 headers at fixed offsets (the outer IP header has no options;
 * frames whose header has them are not rewritten). Pointer-based, so TC and XDP share it. */
#pragma once

#include <linux/udp.h>

#include "lib/common.h"

#define KH_VXLAN_FLAG_I 0x08 /* "VNI valid" */

struct kh_vxlanhdr {
  __u8 flags;
  __u8 reserved1[3];
  __be32 vni_reserved2; /* VNI in the upper 24 bits */
};

/* Offsets of a VXLAN frame with option-less outer and inner IPv4 headers. */
#define KH_VX_OUTER_IP_OFF 14
#define KH_VX_UDP_OFF 34
#define KH_VX_VXLAN_OFF 42
#define KH_VX_INNER_ETH_OFF 50
#define KH_VX_INNER_IP_OFF 64
#define KH_VX_HEADERS_LEN 84 /* through the inner IPv4 header */
#define KH_VX_OVERHEAD 50    /* outer Ethernet + IPv4 + UDP + VXLAN before the inner frame */

struct kh_vx_frame {
  struct ethhdr* eth;
  struct iphdr* ip;
  struct udphdr* udp;
  struct kh_vxlanhdr* vx;
  struct ethhdr* ieth;
  struct iphdr* iip;
};

KH_INLINE __u32 kh_vxlan_vni(const struct kh_vxlanhdr* vx) {
  return bpf_ntohl(vx->vni_reserved2) >> 8;
}

/* Writes a new VNI, keeping the reserved low byte as it was. */
KH_INLINE void kh_vxlan_set_vni(struct kh_vxlanhdr* vx, __u32 vni) {
  vx->vni_reserved2 = (vx->vni_reserved2 & bpf_htonl(0xff)) | bpf_htonl(vni << 8);
}
