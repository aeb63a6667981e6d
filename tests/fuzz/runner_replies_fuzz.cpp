// Fuzz target: the runner's parsing of what the host answers (registration and heartbeat
// overlay block, named-network views, Docker address blocks). Input: a reply body. Every
// refusal is the project's own error (std::invalid_argument, ApiError or DomainError, naming the
// field); a raw nlohmann type or range error escaping would reach the operator as a library message
// and counts as a bug, as does a crash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/json_parse.h"
#include "runner/l2/l2_docker_networks.h"
#include "runner/l2/l2_network_agent.h"
#include "runner/overlay/host_api.h"
#include "runner/overlay/host_link.h"

namespace {

template <class F>
void expect_own_errors(F&& f) {
  try {
    f();
  } catch (const nlohmann::json::exception&) {
    std::abort();
  } catch (const std::exception&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  nlohmann::json reply;
  try {
    reply = kohaku::parse_json(text, kohaku::kReplyJsonLimits);
  } catch (const kohaku::JsonParseError&) {
    return 0;
  }
  using namespace kohaku;
  expect_own_errors([&] { (void)runner::parse_register_answer(reply); });
  expect_own_errors([&] { (void)runner::OverlayAssignment::from_json(reply); });
  expect_own_errors([&] { (void)runner::L2NetworkView::from_json("net-a", reply); });
  expect_own_errors(
      [&] { (void)runner::parse_block_answer(reply, Ipv4Cidr::parse("10.200.0.0/16")); });
  if (reply.is_object())
    for (const auto& item : reply.items())
      expect_own_errors([&] { (void)runner::L2NetworkView::from_json(item.key(), item.value()); });
  return 0;
}
