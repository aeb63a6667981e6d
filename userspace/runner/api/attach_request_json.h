#pragma once
// POST /api/workloads's body as the typed request WorkloadManager::attach() takes.
#include <nlohmann/json.hpp>

#include "runner/workloads/workload_manager.h"

namespace kohaku::runner {

// Throws ApiError(kInvalidRequest, 422) naming the field for anything malformed or unknown.
AttachRequest attach_request_from_json(const nlohmann::json& body);

}  // namespace kohaku::runner
