#include "runner/bpf/tc_filter.h"

#include <bpf/libbpf.h>
#include <net/if.h>

#include <cerrno>
#include <system_error>

namespace kohaku::runner {
namespace {

bpf_tc_hook make_hook(int ifindex, TcDirection direction) {
  bpf_tc_hook hook{};
  hook.sz = sizeof(hook);
  hook.ifindex = ifindex;
  hook.attach_point = direction == TcDirection::kIngress ? BPF_TC_INGRESS : BPF_TC_EGRESS;
  return hook;
}

bpf_tc_opts make_opts(TcFilterId id) {
  bpf_tc_opts opts{};
  opts.sz = sizeof(opts);
  opts.handle = id.handle;
  opts.priority = id.priority;
  return opts;
}

std::string where(int ifindex, TcDirection direction) {
  char name[IF_NAMESIZE] = {};
  std::string dev = if_indextoname(static_cast<unsigned>(ifindex), name)
                        ? std::string(name)
                        : "ifindex " + std::to_string(ifindex);
  return "TC " + to_string(direction) + " of " + dev;
}

}  // namespace

std::string to_string(TcDirection direction) {
  return direction == TcDirection::kIngress ? "ingress" : "egress";
}

void tc_attach(int ifindex, TcDirection direction, TcFilterId id, int prog_fd) {
  bpf_tc_hook hook = make_hook(ifindex, direction);
  int err = bpf_tc_hook_create(&hook);
  if (err && err != -EEXIST)
    throw std::system_error(-err, std::generic_category(),
                            "creating clsact for " + where(ifindex, direction));
  bpf_tc_opts opts = make_opts(id);
  opts.prog_fd = prog_fd;
  opts.flags = BPF_TC_F_REPLACE;
  err = bpf_tc_attach(&hook, &opts);
  if (err)
    throw std::system_error(-err, std::generic_category(),
                            "attaching BPF program to " + where(ifindex, direction));
}

bool tc_detach(int ifindex, TcDirection direction, TcFilterId id) {
  bpf_tc_hook hook = make_hook(ifindex, direction);
  bpf_tc_opts opts = make_opts(id);  // flags, prog_fd and prog_id must all be 0
  int err = bpf_tc_detach(&hook, &opts);
  if (err == -ENOENT || err == -ENODEV || err == -EINVAL) return false;
  if (err)
    throw std::system_error(-err, std::generic_category(),
                            "detaching BPF program from " + where(ifindex, direction));
  return true;
}

std::optional<uint32_t> tc_attached_program(int ifindex, TcDirection direction, TcFilterId id) {
  bpf_tc_hook hook = make_hook(ifindex, direction);
  bpf_tc_opts opts = make_opts(id);
  if (bpf_tc_query(&hook, &opts) != 0) return std::nullopt;
  return opts.prog_id;
}

}  // namespace kohaku::runner
