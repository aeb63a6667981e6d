#pragma once
// The host's HTTP routes (KohakuRiver-compatible paths), each a thin call into OverlayService.
// GET routes are reads; every POST/PUT is mutating and needs the bearer token when one is set.
#include "common/http_router.h"
#include "host/overlay_service.h"

namespace kohaku {

// `service` must outlive the router.
void register_host_api(http::Router& router, OverlayService& service);

}  // namespace kohaku
