// Fuzz target: every route of kohaku-hostd's API (overlay, reservations, named networks) against
// an in-process router and real state in a temporary STATE_DIR. Input: "METHOD TARGET\nBODY".
// Router::handle must never throw, never answer 500 (nothing here is an I/O failure), and every
// error must be a JSON object with a "detail" string (FastAPI's) and the same "error". Run in its
// own network namespace (the suite uses unshare --net), so calls to the runner urls it registers
// reach nothing.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "common/http_router.h"
#include "host/api/host_api.h"
#include "host/api/l2_network_api.h"
#include "host/host_config.h"
#include "host/overlay/overlay_service.h"

namespace {

struct Host {
  Host() {
    dir =
        std::filesystem::temp_directory_path() / ("kohaku-fuzz-api-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    config.state_dir = dir.string();
    config.overlay_enabled = true;
    config.host_reachable_address = kohaku::Ipv4Addr::parse("192.0.2.1");
    config.overlay_subnet = kohaku::SubnetScheme::parse("10.0.0.0/16/4/12");
    service = std::make_unique<kohaku::OverlayService>(config);
    kohaku::register_host_api(router, *service);
    l2 = kohaku::make_l2_networks(router, config, *service);
    if (!l2) std::abort();
  }
  ~Host() { std::filesystem::remove_all(dir); }
  std::filesystem::path dir;
  kohaku::HostConfig config;
  std::unique_ptr<kohaku::OverlayService> service;
  kohaku::http::Router router;
  std::unique_ptr<kohaku::L2Networks> l2;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Host host;
  std::string_view in(reinterpret_cast<const char*>(data), size);
  auto line_end = in.find('\n');
  std::string_view line = in.substr(0, line_end);
  auto space = line.find(' ');
  if (space == std::string_view::npos) return 0;
  kohaku::http::Request req;
  req.method = std::string(line.substr(0, space));
  req.target = std::string(line.substr(space + 1));
  if (line_end != std::string_view::npos) req.body = std::string(in.substr(line_end + 1));
  req.headers["content-type"] = "application/json";
  kohaku::http::Response res = host.router.handle(req);
  if (res.status == 500) std::abort();
  if (res.status >= 400 &&
      (!res.body.is_object() || !res.body.contains("error") || !res.body["error"].is_string() ||
       !res.body.contains("detail") || res.body["detail"] != res.body["error"]))
    std::abort();
  // Periodic work the daemon does between requests.
  if (size % 16 == 0) host.service->tick();
  return 0;
}
