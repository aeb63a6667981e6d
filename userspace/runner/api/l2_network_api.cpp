#include "runner/api/l2_network_api.h"

#include <charconv>

#include "common/api_error.h"

namespace kohaku::runner {

void add_l2_network_routes(http::Router& router, L2NetworkAgent& agent) {
  L2NetworkAgent* a = &agent;
  router.get("/api/l2/networks", [a](const http::Request&) { return a->status(); });
  router.put("/api/l2/networks/{name}",
             [a](const http::Request& r) { return a->put(r.path_params.at("name"), r.json()); });
  router.del("/api/l2/networks/{name}", [a](const http::Request& r) {
    std::optional<uint64_t> revision;
    if (auto it = r.query.find("revision"); it != r.query.end()) {
      uint64_t v = 0;
      const auto& t = it->second;
      auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
      if (ec != std::errc() || p != t.data() + t.size())
        throw ApiError(kInvalidRequest, "'revision' must be a non-negative integer");
      revision = v;
    }
    return a->remove(r.path_params.at("name"), revision);
  });
}

}  // namespace kohaku::runner
