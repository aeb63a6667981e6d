#include "host/bpf/tc_ingress.h"

#include <bpf/libbpf.h>
#include <net/if.h>

#include <string>
#include <system_error>

namespace kohaku::bpf {
namespace {

std::string device(int ifindex) {
  char name[IF_NAMESIZE] = {};
  std::string text = "ifindex " + std::to_string(ifindex);
  if (if_indextoname(static_cast<unsigned>(ifindex), name)) text += " (" + std::string(name) + ")";
  return text;
}

bpf_tc_hook ingress_hook(int ifindex) {
  bpf_tc_hook hook{};
  hook.sz = sizeof(hook);
  hook.ifindex = ifindex;
  hook.attach_point = BPF_TC_INGRESS;
  return hook;
}

bpf_tc_opts filter_opts(TcFilterId id) {
  bpf_tc_opts opts{};
  opts.sz = sizeof(opts);
  opts.handle = id.handle;
  opts.priority = id.priority;
  return opts;
}

}  // namespace

void tc_ingress_attach(int ifindex, int prog_fd, TcFilterId id) {
  bpf_tc_hook hook = ingress_hook(ifindex);
  int err = bpf_tc_hook_create(&hook);
  if (err && err != -EEXIST)
    throw std::system_error(-err, std::generic_category(),
                            "cannot create clsact hook on " + device(ifindex));
  bpf_tc_opts opts = filter_opts(id);
  opts.prog_fd = prog_fd;
  opts.flags = BPF_TC_F_REPLACE;
  err = bpf_tc_attach(&hook, &opts);
  if (err)
    throw std::system_error(-err, std::generic_category(),
                            "cannot attach TC ingress program to " + device(ifindex));
}

bool tc_ingress_detach(int ifindex, TcFilterId id) {
  bpf_tc_hook hook = ingress_hook(ifindex);
  bpf_tc_opts opts = filter_opts(id);  // flags, prog_fd and prog_id must stay 0 for detach
  int err = bpf_tc_detach(&hook, &opts);
  if (err == -ENOENT || err == -ENODEV || err == -EINVAL) {
    // EINVAL: no clsact qdisc on the device at all, nothing of ours to remove.
    return false;
  }
  if (err)
    throw std::system_error(-err, std::generic_category(),
                            "cannot detach TC ingress program from " + device(ifindex));
  return true;
}

std::optional<uint32_t> tc_ingress_program_id(int ifindex, TcFilterId id) {
  bpf_tc_hook hook = ingress_hook(ifindex);
  bpf_tc_opts opts = filter_opts(id);
  int err = bpf_tc_query(&hook, &opts);
  if (err == -ENOENT || err == -ENODEV || err == -EINVAL) return std::nullopt;
  if (err)
    throw std::system_error(-err, std::generic_category(),
                            "cannot query TC ingress filter on " + device(ifindex));
  return opts.prog_id;
}

}  // namespace kohaku::bpf
