#include "runner/bpf/nat_config.h"

#include <arpa/inet.h>

#include <cstring>
#include <stdexcept>
#include <string>

#include "lib/runner_types.h"

namespace kohaku::runner {
namespace {

void put_addr(__u8 (&out)[4], uint32_t host_order) {
  uint32_t be = htonl(host_order);
  std::memcpy(out, &be, 4);
}

uint32_t get_addr(const __u8 (&in)[4]) {
  uint32_t be;
  std::memcpy(&be, in, 4);
  return ntohl(be);
}

}  // namespace

void NatConfig::validate() const {
  if (overlay.prefix == 0 || overlay.prefix > 30)
    throw std::invalid_argument("NAT config: overlay network " + overlay.to_string() +
                                " must have a prefix between /1 and /30");
  if (uplink.is_unspecified()) throw std::invalid_argument("NAT config: uplink address is unset");
  if (overlay.contains(uplink))
    throw std::invalid_argument("NAT config: uplink address " + uplink.to_string() +
                                " lies inside the overlay network " + overlay.to_string());
  if (port_min == 0 || port_min > port_max)
    throw std::invalid_argument("NAT config: port range " + std::to_string(port_min) + "-" +
                                std::to_string(port_max) + " is empty or starts at 0");
  if (vxlan_port == 0) throw std::invalid_argument("NAT config: VXLAN port is 0");
  if (port_min == port_max && port_min == vxlan_port)
    throw std::invalid_argument("NAT config: the only port in the range is the VXLAN port");
  const uint32_t all[] = {timeouts.tcp_syn_sent,    timeouts.tcp_syn_recv,
                          timeouts.tcp_established, timeouts.tcp_fin_wait,
                          timeouts.tcp_close_wait,  timeouts.tcp_time_wait,
                          timeouts.tcp_close,       timeouts.udp,
                          timeouts.udp_stream,      timeouts.icmp};
  for (uint32_t t : all)
    if (t == 0) throw std::invalid_argument("NAT config: conntrack timeouts must be > 0 seconds");
}

runner_config encode_nat_config(const NatConfig& c, uint32_t policy_rules) {
  c.validate();
  runner_config v{};
  put_addr(v.overlay_addr, c.overlay.addr.value);
  put_addr(v.overlay_mask, c.overlay.mask());
  put_addr(v.uplink_addr, c.uplink.value);
  v.port_min = c.port_min;
  v.port_max = c.port_max;
  v.vxlan_port = c.vxlan_port;
  v.enabled = 1;
  v.timeouts = {c.timeouts.tcp_syn_sent,    c.timeouts.tcp_syn_recv,
                c.timeouts.tcp_established, c.timeouts.tcp_fin_wait,
                c.timeouts.tcp_close_wait,  c.timeouts.tcp_time_wait,
                c.timeouts.tcp_close,       c.timeouts.udp,
                c.timeouts.udp_stream,      c.timeouts.icmp};
  v.policy_rules = policy_rules;
  return v;
}

NatConfig decode_nat_config(const runner_config& v) {
  NatConfig c;
  uint32_t mask = get_addr(v.overlay_mask);
  c.overlay.addr = Ipv4Addr{get_addr(v.overlay_addr)};
  c.overlay.prefix = static_cast<uint8_t>(__builtin_popcount(mask));
  c.uplink = Ipv4Addr{get_addr(v.uplink_addr)};
  c.port_min = v.port_min;
  c.port_max = v.port_max;
  c.vxlan_port = v.vxlan_port;
  const auto& t = v.timeouts;
  c.timeouts = {t.tcp_syn_sent,   t.tcp_syn_recv,  t.tcp_established, t.tcp_fin_wait,
                t.tcp_close_wait, t.tcp_time_wait, t.tcp_close,       t.udp,
                t.udp_stream,     t.icmp};
  return c;
}

}  // namespace kohaku::runner
