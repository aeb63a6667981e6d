// bench_prog_cost: BPF_PROG_TEST_RUN cost of every program in bpf/ on full, valid packets that
// take each program's real work path (forward, translate, track), never a fast exit. Each case
// is checked once (verdict and rewritten bytes) before it is timed, so a case that silently
// falls off its path fails loudly instead of reporting a flattering number.
//
//   bench_prog_cost [--repeat N] [--rounds R]
//
// Runs in a private network namespace it creates (the host program's FIB lookups need devices);
// prints one line per case: program=<p> case=<c> frame_bytes=<n> ns_per_packet=<median> ...
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <net/if.h>
#include <sched.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <tuple>
#include <vector>

#include "bench_cli.h"
#include "host/bpf/host_datapath.h"
#include "host/bpf/host_express.h"
#include "host_test_env.h"
#include "packet.h"
#include "prog_run.h"
#include "runner/bpf/l2_gateway_guard.h"
#include "runner/bpf/runner_datapath.h"
#include "runner/bpf/workload_table.h"

namespace {

using namespace kohaku::test::pkt;
using kohaku::Ipv4Addr;
using kohaku::Ipv4Cidr;

using kohaku::test::ifindex_of;
using kohaku::test::make_hub_uplink;
using kohaku::test::make_two_tunnels;
using kohaku::test::prog_test_run;
using kohaku::test::sh;
using Run = kohaku::test::RunResult;

// `xdp`: the program is an XDP program (xdp_md context, ingress_ifindex only).
Run test_run(int prog_fd, const Bytes& frame, uint32_t ifindex, uint32_t ingress_ifindex,
             uint32_t repeat, bool xdp = false) {
  if (xdp) {
    xdp_md ctx{};
    ctx.data_end = static_cast<uint32_t>(frame.size());
    ctx.ingress_ifindex = ingress_ifindex;
    return prog_test_run(prog_fd, frame, ctx, repeat);
  }
  __sk_buff ctx{};
  ctx.ifindex = ifindex;
  ctx.ingress_ifindex = ingress_ifindex;
  return prog_test_run(prog_fd, frame, ctx, repeat);
}

struct Case {
  std::string program, name;
  int prog_fd;
  Bytes frame;
  uint32_t ifindex, ingress_ifindex;
  int want_verdict;
  // Checks the output of one run; returns "" when the program did its real work.
  std::function<std::string(const Run&)> check;
  bool xdp = false;
};

std::string verdict_name(int v, bool xdp = false) {
  if (xdp) {
    switch (v) {
      case XDP_TX:
        return "xdp_tx";
      case XDP_PASS:
        return "xdp_pass";
      case XDP_DROP:
        return "xdp_drop";
      case XDP_REDIRECT:
        return "xdp_redirect";
      default:
        return std::to_string(v);
    }
  }
  switch (v) {
    case TC_ACT_OK:
      return "ok";
    case TC_ACT_SHOT:
      return "shot";
    case TC_ACT_REDIRECT:
      return "redirect";
    case TC_ACT_UNSPEC:
      return "unspec(pass)";
    default:
      return std::to_string(v);
  }
}

int run(uint32_t repeat, int rounds) {
  if (::unshare(CLONE_NEWNET) != 0)
    throw std::system_error(errno, std::generic_category(), "unshare(CLONE_NEWNET)");
  // Two runner tunnels as veths (the program's FIB lookup and neighbour entry are the kernel's),
  // and the hub's uplink for the express stage with the runners' underlay addresses resolved.
  const auto tunnels = make_two_tunnels();
  const uint32_t tun1 = tunnels.vxa, tun2 = tunnels.vxb;
  const uint32_t up0 = make_hub_uplink();

  // Runner N (1, 2) as hostd registers it: subnet 10.N.0.0/16 behind tunnel N with host address
  // 10.N.0.254, and for the express stage VNI 100+N from 198.18.0.1N, tunnel MAC 02:..:0N:fe.
  const uint32_t tunnel[] = {0, tun1, tun2};
  auto subnet = [](uint32_t id) { return Ipv4Cidr::parse("10." + std::to_string(id) + ".0.0/16"); };
  kohaku::bpf::HostDatapath host({.pin = false});
  for (uint32_t id : {1u, 2u}) {
    host.upsert_runner({id, subnet(id), tunnel[id]});
    host.add_host_address({Ipv4Addr::parse("10." + std::to_string(id) + ".0.254"), tunnel[id]});
  }

  const Mac up0_mac{0x02, 0, 0, 0, 0xaa, 0x01}, runner1_phys{0x02, 0, 0, 0, 0xaa, 0x11};
  kohaku::bpf::HostExpress express({.pin = false}, host);
  express.configure({Ipv4Addr::parse("198.18.0.1"), up0, up0_mac, 4789, 100, false});
  for (uint32_t id : {1u, 2u})
    express.upsert_runner({id,
                           100 + id,
                           Ipv4Addr::parse("198.18.0.1" + std::to_string(id)),
                           tunnel[id],
                           {0x02, 0, 0, 0, static_cast<uint8_t>(id), 0xfe},
                           subnet(id)});

  auto runner = kohaku::runner::RunnerDatapath::open({});
  kohaku::runner::NatConfig nat;
  nat.overlay = Ipv4Cidr::parse("10.0.0.0/8");
  nat.uplink = Ipv4Addr::parse("192.168.50.2");
  runner->configure(nat);
  // A named L2 network with outbound NAT: its sources take the LPM lookup in runner_nets.
  runner->set_named_networks({{Ipv4Cidr::parse("172.20.0.0/24"), 13091, true}});
  // The gateway guard of that network's vxlan device, keyed by the test run's device (lo).
  auto guard = kohaku::runner::L2GatewayGuard::open("");
  kohaku::runner::L2Gateway gateway{Ipv4Addr::parse("172.20.0.1"), {}};
  gateway.mac.bytes = {0x0a, 0x6b, 172, 20, 0, 1};
  guard->sync({{1, gateway}});  // also attaches to lo: of this private namespace (above)

  // The runner fast path: bridge kbr0 (10.9.0.1/16) with workloads 10.9.0.5 and .6 on veths
  // 4201/4202 (map keys), uplink rup0 (the NAT's 192.168.50.2) whose default gateway is resolved.
  sh("ip link add kbr0 address 02:00:00:00:0b:01 type bridge && ip link set kbr0 up");
  sh("ip addr add 10.9.0.1/16 dev kbr0");
  sh("ip link add rup0 address 02:00:00:00:cc:02 type veth peer name rup0-peer");
  sh("ip link set rup0 up && ip link set rup0-peer up && ip addr add 192.168.50.2/24 dev rup0");
  sh("ip route add default via 192.168.50.1 dev rup0");
  sh("ip neigh replace 192.168.50.1 lladdr 02:00:00:00:cc:01 dev rup0 nud permanent");
  const Mac gw_mac{0x02, 0, 0, 0, 0x0b, 0x01}, wl_mac{0x02, 0, 0, 0, 0x0b, 0x05},
      wl2_mac{0x02, 0, 0, 0, 0x0b, 0x06}, router_mac{0x02, 0, 0, 0, 0xcc, 0x01};
  auto mac_of = [](const Mac& m) {
    kohaku::netlink::MacAddr out;
    std::copy(m.begin(), m.end(), out.bytes.begin());
    return out;
  };
  runner->set_fast_path_devices(ifindex_of("rup0"), 0);
  const uint32_t kbr0 = ifindex_of("kbr0");
  using Workload = std::tuple<uint32_t, const char*, Mac>;
  for (auto [veth, addr, mac] :
       {Workload{4201, "10.9.0.5", wl_mac}, Workload{4202, "10.9.0.6", wl2_mac}})
    kohaku::runner::upsert_workload(
        runner->workload_maps(),
        {veth, Ipv4Addr::parse(addr), 16, mac_of(mac), mac_of(gw_mac), kbr0, true});
  const uint32_t fw = ip("10.9.0.5"), fw2 = ip("10.9.0.6");

  const Mac tun1_mac{0x02, 0, 0, 0, 0x01, 0xfe}, runner1_mac{0x02, 0, 0, 0, 0x01, 0x01};
  const uint32_t w1 = ip("10.1.0.5"), w2 = ip("10.2.0.5"), uplink = ip("192.168.50.2"),
                 server = ip("198.51.100.10"), w1b = ip("10.1.0.6");
  const Bytes payload(64, 0x5a);
  auto udp_frame = [&](uint32_t s, uint32_t d, uint16_t sp, uint16_t dp) {
    return eth(tun1_mac, runner1_mac, ipv4(s, d, kProtoUdp, udp(s, d, sp, dp, payload)));
  };
  auto tcp_frame = [&](uint32_t s, uint32_t d, uint16_t sp, uint16_t dp, uint8_t flags) {
    return eth(kMacA, kMacB, ipv4(s, d, kProtoTcp, tcp(s, d, sp, dp, flags, payload)));
  };
  auto src_is = [](uint32_t want) {
    return [want](const Run& r) -> std::string {
      auto v = parse_eth_ipv4(r.out);
      if (!v || v->src != want) return "source not rewritten to " + ip_str(want);
      return verify_checksums(r.out);
    };
  };
  auto dst_is = [](uint32_t want) {
    return [want](const Run& r) -> std::string {
      auto v = parse_eth_ipv4(r.out);
      if (!v || v->dst != want) return "destination not restored";
      return verify_checksums(r.out);
    };
  };
  auto no_check = [](const Run&) { return std::string(); };
  auto routed_to = [](const Mac& mac) {
    return [mac](const Run& r) -> std::string {
      auto v = parse_eth_ipv4(r.out);
      if (!v || !std::equal(mac.begin(), mac.end(), r.out.begin())) return "not sent to its MAC";
      if (v->ttl != 63) return "TTL not decremented";
      return verify_checksums(r.out);
    };
  };

  // Prime the NAT flows so the timed runs translate established flows (the common case).
  Bytes tcp_out = tcp_frame(w1, server, 40000, 443, kSyn);
  Run syn = test_run(runner->nat_egress_fd(), tcp_out, 1, 0, 1);
  auto syn_v = parse_eth_ipv4(syn.out);
  if (syn.retval != TC_ACT_OK || !syn_v || syn_v->src != uplink)
    throw std::runtime_error("priming: SYN not masqueraded");
  uint16_t tcp_nat_port = syn_v->l4.sport;
  Bytes synack = tcp_frame(server, uplink, 443, tcp_nat_port, kSyn | kAck);
  if (test_run(runner->nat_ingress_fd(), synack, 1, 1, 1).retval != TC_ACT_OK)
    throw std::runtime_error("priming: SYN-ACK not reverse translated");
  Bytes udp_out =
      eth(kMacA, kMacB, ipv4(w1, server, kProtoUdp, udp(w1, server, 50000, 53, payload)));
  Run u = test_run(runner->nat_egress_fd(), udp_out, 1, 0, 1);
  auto u_v = parse_eth_ipv4(u.out);
  if (u.retval != TC_ACT_OK || !u_v || u_v->src != uplink)
    throw std::runtime_error("priming: UDP not masqueraded");
  Bytes udp_reply =
      eth(kMacA, kMacB,
          ipv4(server, uplink, kProtoUdp, udp(server, uplink, 53, u_v->l4.sport, payload)));
  Run back = test_run(runner->nat_ingress_fd(), udp_reply, 1, 1, 1);
  if (back.retval != TC_ACT_OK) throw std::runtime_error("priming: UDP reply dropped");
  Bytes tcp_data = tcp_frame(w1, server, 40000, 443, kAck | kPsh);
  Bytes tcp_reply = tcp_frame(server, uplink, 443, tcp_nat_port, kAck | kPsh);
  Bytes reply_into_overlay = back.out;  // server -> workload, as the bridge egress sees it
  const uint32_t named = ip("172.20.0.5");
  Bytes named_out =
      eth(kMacA, kMacB, ipv4(named, server, kProtoUdp, udp(named, server, 50001, 53, payload)));
  if (test_run(runner->nat_egress_fd(), named_out, 1, 0, 1).retval != TC_ACT_OK)
    throw std::runtime_error("priming: named network UDP not masqueraded");
  const Mac broadcast{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, zero{};
  Bytes arp_for_workload =
      eth(broadcast, kMacA, arp(kArpRequest, kMacA, named, zero, ip("172.20.0.6")), kEthArp);
  Bytes arp_for_gateway =
      eth(broadcast, kMacA, arp(kArpRequest, kMacA, named, zero, ip("172.20.0.1")), kEthArp);

  // What runner 1's vxlan0 sends for the same inner frame: 64 bytes of payload, as above.
  const uint32_t hub_ip = ip("198.18.0.1"), r1_ip = ip("198.18.0.11"), r2_ip = ip("198.18.0.12");
  Bytes vxlan_frame =
      eth(up0_mac, runner1_phys,
          ipv4(r1_ip, hub_ip, kProtoUdp,
               udp(r1_ip, hub_ip, 40001, 4789, vxlan(101, udp_frame(w1, w2, 40000, 5201)), true)));
  auto expressed = [r2_ip](const Run& r) -> std::string {
    auto v = parse_eth_ipv4(r.out);
    if (!v || v->dst != r2_ip) return "outer destination not runner 2";
    auto inner = parse_ipv4(r.out.data(), r.out.size(), 64);
    if (!inner || inner->ttl != 63) return "inner TTL not decremented";
    return verify_checksums(r.out);
  };

  std::vector<Case> cases = {
      {"host_express_tc", "vxlan_udp64_runner1_to_runner2", express.tc_program_fd(), vxlan_frame,
       up0, up0, TC_ACT_REDIRECT, expressed},
      {"host_express_xdp", "vxlan_udp64_runner1_to_runner2", express.xdp_program_fd(), vxlan_frame,
       up0, up0, XDP_TX, expressed, true},
      {"host_express_tc", "vxlan_host_traffic_passed", express.tc_program_fd(),
       eth(up0_mac, runner1_phys,
           ipv4(r1_ip, hub_ip, kProtoTcp, tcp(r1_ip, hub_ip, 40000, 8000, kAck, payload))),
       up0, up0, TC_ACT_UNSPEC, no_check},
      {"host_forward", "udp64_runner1_to_runner2", host.program_fd(),
       udp_frame(w1, w2, 40000, 5201), tun1, tun1, TC_ACT_REDIRECT,
       [](const Run& r) -> std::string {
         auto v = parse_eth_ipv4(r.out);
         if (!v || v->ttl != 63) return "TTL not decremented";
         return verify_checksums(r.out);
       }},
      {"host_forward", "udp64_to_host_address", host.program_fd(),
       udp_frame(w1, ip("10.1.0.254"), 40000, 5201), tun1, tun1, TC_ACT_UNSPEC, no_check},
      {"runner_nat_egress", "tcp64_established_masquerade", runner->nat_egress_fd(), tcp_data, 1, 0,
       TC_ACT_OK, src_is(uplink)},
      {"runner_nat_egress", "udp64_masquerade", runner->nat_egress_fd(), udp_out, 1, 0, TC_ACT_OK,
       src_is(uplink)},
      {"runner_nat_egress", "udp64_named_network_masquerade", runner->nat_egress_fd(), named_out, 1,
       0, TC_ACT_OK, src_is(uplink)},
      {"runner_nat_egress", "udp64_overlay_internal_untouched", runner->nat_egress_fd(),
       eth(kMacA, kMacB, ipv4(w1, w2, kProtoUdp, udp(w1, w2, 50000, 53, payload))), 1, 0, TC_ACT_OK,
       src_is(w1)},
      {"runner_nat_ingress", "tcp64_reply_reverse", runner->nat_ingress_fd(), tcp_reply, 1, 1,
       TC_ACT_OK, dst_is(w1)},
      {"runner_nat_ingress", "udp64_reply_reverse", runner->nat_ingress_fd(), udp_reply, 1, 1,
       TC_ACT_OK, dst_is(w1)},
      {"runner_forward_filter", "udp64_tracked_reply_into_overlay", runner->forward_filter_fd(),
       reply_into_overlay, 1, 7, TC_ACT_OK, no_check},
      {"runner_forward_filter", "udp64_overlay_to_overlay", runner->forward_filter_fd(),
       eth(kMacA, kMacB, ipv4(w2, w1b, kProtoUdp, udp(w2, w1b, 5000, 53, payload))), 1, 7,
       TC_ACT_OK, no_check},
      {"runner_workload", "udp64_to_outside_via_fib", runner->workload_fd(),
       eth(gw_mac, wl_mac, ipv4(fw, server, kProtoUdp, udp(fw, server, 40002, 53, payload))), 0,
       4201, TC_ACT_REDIRECT, routed_to(router_mac)},
      {"runner_workload", "udp64_to_workload_of_the_runner", runner->workload_fd(),
       eth(gw_mac, wl_mac, ipv4(fw, fw2, kProtoUdp, udp(fw, fw2, 40002, 53, payload))), 0, 4201,
       TC_ACT_REDIRECT, routed_to(wl2_mac)},
      {"runner_overlay_ingress", "udp64_hub_to_workload", runner->overlay_ingress_fd(),
       eth(gw_mac, tun1_mac, ipv4(w2, fw2, kProtoUdp, udp(w2, fw2, 40003, 53, payload))), 0, 7,
       TC_ACT_REDIRECT, routed_to(wl2_mac)},
      {"l2_gateway_guard", "arp_request_for_workload_crosses", guard->program_fd(),
       arp_for_workload, 1, 0, TC_ACT_OK, no_check},
      {"l2_gateway_guard", "arp_request_for_gateway_kept_local", guard->program_fd(),
       arp_for_gateway, 1, 0, TC_ACT_SHOT, no_check},
  };

  int failures = 0;
  for (const auto& c : cases) {
    Run once = test_run(c.prog_fd, c.frame, c.ifindex, c.ingress_ifindex, 1, c.xdp);
    std::string problem = static_cast<int>(once.retval) == c.want_verdict
                              ? c.check(once)
                              : "verdict " + verdict_name(static_cast<int>(once.retval), c.xdp) +
                                    ", expected " + verdict_name(c.want_verdict, c.xdp);
    if (!problem.empty()) {
      std::fprintf(stderr, "bench_prog_cost: %s/%s is off its path: %s\n", c.program.c_str(),
                   c.name.c_str(), problem.c_str());
      ++failures;
      continue;
    }
    std::vector<uint32_t> ns;
    for (int i = 0; i < rounds; ++i)
      ns.push_back(test_run(c.prog_fd, c.frame, c.ifindex, c.ingress_ifindex, repeat, c.xdp).ns);
    std::sort(ns.begin(), ns.end());
    std::printf("program=%s case=%s frame_bytes=%zu verdict=%s ns_per_packet=%u min=%u max=%u\n",
                c.program.c_str(), c.name.c_str(), c.frame.size(),
                verdict_name(c.want_verdict, c.xdp).c_str(), ns[ns.size() / 2], ns.front(),
                ns.back());
  }
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  uint32_t repeat = 100000;
  int rounds = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k == "--repeat") {
      repeat = static_cast<uint32_t>(std::stoul(argv[i + 1]));
    } else if (k == "--rounds") {
      rounds = std::stoi(argv[i + 1]);
    } else {
      std::fprintf(stderr, "usage: bench_prog_cost [--repeat N] [--rounds R]\n");
      return 2;
    }
  }
  return kohaku::bench::report_failures("bench_prog_cost",
                                        [&] { return run(repeat, std::max(rounds, 1)); });
}
