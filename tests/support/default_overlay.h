#pragma once
// What the default OVERLAY_SUBNET (10.128.0.0/12/6/14) hands runner 1, as the register answer's
// `overlay` block says it: checked the same way by the service's unit tests and the daemon's
// route tests, so both hold the layout to one statement.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>

namespace kohaku::test_support {

inline void expect_default_runner1_overlay(const nlohmann::json& o,
                                           const std::string& host_physical_ip) {
  EXPECT_EQ(o["runner_id"], 1);
  EXPECT_EQ(o["overlay_subnet"], "10.128.64.0/18");
  EXPECT_EQ(o["overlay_gateway"], "10.128.64.1");
  EXPECT_EQ(o["host_overlay_ip"], "10.128.0.1");
  EXPECT_EQ(o["host_physical_ip"], host_physical_ip);
  EXPECT_EQ(o["overlay_network_cidr"], "10.128.0.0/12");
  EXPECT_EQ(o["host_ip_on_runner_subnet"], "10.128.64.254");
}

}  // namespace kohaku::test_support
