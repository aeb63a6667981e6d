#pragma once
// kohakuctl's overlay verbs: `node overlay [HOST]`, `node overlay-release`, `node
// overlay-cleanup` (docs/api.md, "Overlay"). Each checks the reply's shape and prints a table, or
// the JSON with --json.
#include <ostream>

#include "commands.h"
#include "common/http_client.h"

namespace kohakuctl {

// Without HOST: the host's status panel and allocations; with HOST: that runner's side.
int node_overlay(const Invocation& inv, const kohaku::http::HttpClient& c, std::ostream& out);
int overlay_release(const Invocation& inv, const kohaku::http::HttpClient& c, std::ostream& out);
int overlay_cleanup(const Invocation& inv, const kohaku::http::HttpClient& c, std::ostream& out);

}  // namespace kohakuctl
