/* Includes and small macros every kohaku BPF program shares. */
#pragma once

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/types.h>
#include <stdbool.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#ifndef likely
#define likely(x) __builtin_expect(!!(x), 1)
#endif
#ifndef unlikely
#define unlikely(x) __builtin_expect(!!(x), 0)
#endif

/* Everything below is inlined so the verifier sees constant offsets into packets and maps. */
#define KH_INLINE static __always_inline

/* skb->pkt_type values (linux/if_packet.h drags in socket headers the BPF target lacks). */
#define KH_PACKET_HOST 0
#define KH_PACKET_BROADCAST 1
#define KH_PACKET_MULTICAST 2
#define KH_PACKET_OTHERHOST 3

/* AF_INET without sys/socket.h. */
#define KH_AF_INET 2

/* Two Ethernet addresses, compared as one 4-byte and one 2-byte load. */
KH_INLINE bool kh_mac_equal(const __u8* a, const __u8* b) {
  return *(const __u32*)a == *(const __u32*)b && *(const __u16*)(a + 4) == *(const __u16*)(b + 4);
}
