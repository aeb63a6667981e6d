/* Test fixture of tests/e2e/test_host_express.sh: an XDP program of "another tool" (it passes
 * every frame), so the test can check that kohaku-hostd never replaces a foreign XDP program
 * on the uplink and falls back to its TC variant instead. */
#include <linux/bpf.h>

#include <bpf/bpf_helpers.h>

SEC("xdp")
int foreign_xdp_pass(struct xdp_md* ctx) {
  return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
