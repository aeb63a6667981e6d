// The host -> runner view of a named L2 network (common/wire/l2_network_view.h): what the runner
// accepts from the host and what it refuses.
#include "common/wire/l2_network_view.h"

#include <gtest/gtest.h>

#include "common/domain_error.h"

namespace kohaku::wire {
namespace {

using nlohmann::json;

TEST(L2NetworkView, ParsesTheHostsView) {
  auto v = L2NetworkView::from_json("train", json{{"vni", 13091},
                                                  {"subnet", "172.20.0.0/24"},
                                                  {"gateway", "172.20.0.1"},
                                                  {"mtu", 1400},
                                                  {"port", 8472},
                                                  {"peers", {"198.18.0.12", "198.18.0.13"}},
                                                  {"outbound_nat", false},
                                                  {"revision", 7}});
  EXPECT_EQ(v.vni, 13091u);
  EXPECT_EQ(v.peers.size(), 2u);
  EXPECT_EQ(v.mtu, 1400u);
  EXPECT_EQ(v.port, 8472);
  EXPECT_FALSE(v.outbound_nat);
  EXPECT_EQ(v.revision, 7u);
  EXPECT_EQ(L2NetworkView::from_json("train", v.to_json()).to_json(), v.to_json());
}

TEST(L2NetworkView, RejectsMalformedViews) {
  json good = {
      {"vni", 5}, {"subnet", "172.20.0.0/24"}, {"gateway", "172.20.0.1"}, {"peers", json::array()}};
  EXPECT_NO_THROW(L2NetworkView::from_json("n", good));
  for (auto [key, value] :
       std::vector<std::pair<std::string, json>>{{"vni", 0},
                                                 {"vni", 16777216},
                                                 {"subnet", "172.20.0.5/24"},
                                                 {"gateway", "10.0.0.1"},
                                                 {"peers", json::array({"nope"})},
                                                 {"mtu", 20}}) {
    json bad = good;
    bad[key] = value;
    EXPECT_THROW(L2NetworkView::from_json("n", bad), DomainError) << key << "=" << value;
  }
  json missing = good;
  missing.erase("peers");
  EXPECT_THROW(L2NetworkView::from_json("n", missing), DomainError);
}

}  // namespace
}  // namespace kohaku::wire
