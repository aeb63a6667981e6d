#include "runner/datapath/deny_rule_store.h"

#include <gtest/gtest.h>

#include <fstream>

#include "support/temp_dir.h"

namespace kohaku::runner {
namespace {

using test_support::TempDir;

DenyRule rule(const char* src, const char* dst, uint8_t proto, uint16_t port) {
  DenyRule r;
  r.source = Ipv4Cidr::parse(src);
  r.destination = Ipv4Cidr::parse(dst);
  r.protocol = proto;
  r.port = port;
  return r;
}

TEST(DenyRuleStore, NoFileIsNotAnEmptyList) {
  TempDir dir;
  EXPECT_FALSE(DenyRuleStore(dir.path() / "deny-rules.json").load().has_value());
}

TEST(DenyRuleStore, RoundTripKeepsEveryField) {
  TempDir dir;
  DenyRuleStore store(dir.path() / "state" / "deny-rules.json");  // parent created on save
  std::vector<DenyRule> rules = {rule("10.1.0.0/16", "0.0.0.0/0", 6, 22),
                                 rule("0.0.0.0/0", "198.51.100.7/32", 0, 0),
                                 rule("10.2.0.5/32", "192.0.2.0/24", 132, 0)};
  store.save(rules);
  EXPECT_EQ(store.load(), rules);
  store.save({});
  EXPECT_EQ(store.load(), std::vector<DenyRule>{});
}

TEST(DenyRuleStore, BadFileNamesTheFileAndTheRule) {
  TempDir dir;
  const auto file = dir.path() / "deny-rules.json";
  std::ofstream(file) << R"({"rules": [{"source": "10.1.0.0/16", "protocol": "tcp"},
                                       {"source": "10.1.0.1/16"}]})";
  try {
    DenyRuleStore(file).load();
    FAIL() << "a rule with host bits set was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(file.string() + ": rule 2: source '10.1.0.1/16'"),
              std::string::npos)
        << e.what();
  }
  std::ofstream(file, std::ios::trunc) << "{not json";
  EXPECT_THROW(DenyRuleStore(file).load(), std::runtime_error);
}

}  // namespace
}  // namespace kohaku::runner
