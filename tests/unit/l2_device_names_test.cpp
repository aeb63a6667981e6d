// The names of a named L2 network's devices on a runner (runner/l2_device_names.h).
#include "runner/l2_device_names.h"

#include <gtest/gtest.h>

namespace kohaku::runner {
namespace {

TEST(L2BridgeName, ShortNamesKeepThemLongOnesHash) {
  EXPECT_EQ(l2_bridge_name("train"), "kbr-train");
  EXPECT_EQ(l2_bridge_name("abcdefghijk"), "kbr-abcdefghijk");  // exactly 15
  // 16 characters: kb- + the first 8 hex digits of sha256 (as `sha256sum` prints them).
  EXPECT_EQ(l2_bridge_name("abcdefghijkl"), "kb-" + std::string("d682ed4c"));
  EXPECT_EQ(l2_bridge_name("a-rather-long-network"), "kb-" + std::string("52499323"));
  EXPECT_EQ(l2_vxlan_name(13091), "vxlan13091");
}

}  // namespace
}  // namespace kohaku::runner
