// Fuzz target: loading the host's STATE_DIR (snapshot state.json + journal.log, then the named
// networks' own pair). Input: the snapshot, a line "--journal--", the journal. Whatever the
// files hold, the daemon starts with a consistent state or refuses with an exception naming
// the file; it never crashes, and what it loaded answers its read routes.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "host/host_config.h"
#include "host/l2/l2_networks.h"
#include "host/overlay/overlay_service.h"

namespace {

void write(const std::filesystem::path& p, std::string_view bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto dir =
      std::filesystem::temp_directory_path() / ("kohaku-fuzz-state-" + std::to_string(::getpid()));
  std::string_view in(reinterpret_cast<const char*>(data), size);
  constexpr std::string_view kSplit = "\n--journal--\n";
  auto at = in.find(kSplit);
  std::string_view snapshot = in.substr(0, at);
  std::string_view journal = at == std::string_view::npos ? "" : in.substr(at + kSplit.size());

  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir / "l2-networks");
  write(dir / "state.json", snapshot);
  write(dir / "journal.log", journal);
  write(dir / "l2-networks" / "state.json", snapshot);
  write(dir / "l2-networks" / "journal.log", journal);

  kohaku::HostConfig config;
  config.state_dir = dir.string();
  config.overlay_enabled = true;
  config.overlay_subnet = kohaku::SubnetScheme::parse("10.0.0.0/16/4/12");
  try {
    kohaku::OverlayService service(config);
    (void)service.nodes();
    (void)service.overlay_status();
    (void)service.ip_stats();
    (void)service.ip_reservations(kohaku::IpReservationsRequest{.include_used = true});
  } catch (const std::exception&) {
  }
  try {
    kohaku::L2NetworkRegistry::Options options;
    options.state_dir = dir;
    options.hub_vni_first = 101;
    options.hub_vni_last = 115;
    kohaku::L2NetworkRegistry registry(
        options, [](const std::string&) { return std::optional<kohaku::L2RunnerInfo>(); },
        [] { return int64_t{0}; });
    (void)registry.list(std::nullopt);
  } catch (const std::exception&) {
  }
  return 0;
}
