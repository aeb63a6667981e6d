#include "runner/api/attach_request_json.h"

#include "common/api_error.h"
#include "common/netlink/link.h"

namespace kohaku::runner {

using nlohmann::json;
namespace nl = kohaku::netlink;

AttachRequest attach_request_from_json(const json& body) {
  if (!body.is_object()) throw ApiError(kInvalidRequest, "body must be a JSON object");
  AttachRequest r;
  for (const auto& [key, value] : body.items()) {
    if (key == "netns") {
      if (!value.is_string() || value.get<std::string>().empty() ||
          value.get<std::string>()[0] != '/') {
        throw ApiError(kInvalidRequest,
                       "'netns' must be an absolute path like /var/run/netns/NAME");
      }
      r.netns = value.get<std::string>();
    } else if (key == "pid") {
      if (!value.is_number_integer() || value.get<int64_t>() <= 0 ||
          value.get<int64_t>() > 0x3fffffff) {
        throw ApiError(kInvalidRequest, "'pid' must be a positive process id");
      }
      r.pid = value.get<int>();
    } else if (key == "token") {
      if (!value.is_string() || value.get<std::string>().empty()) {
        throw ApiError(kInvalidRequest, "'token' must be a non-empty string");
      }
      r.token = value.get<std::string>();
    } else if (key == "name") {
      if (!value.is_string() || value.get<std::string>().size() > 128) {
        throw ApiError(kInvalidRequest, "'name' must be a string of at most 128 characters");
      }
      r.name = value.get<std::string>();
    } else if (key == "interface") {
      if (!value.is_string()) throw ApiError(kInvalidRequest, "'interface' must be a string");
      try {
        nl::validate_link_name(value.get<std::string>());
      } catch (const std::invalid_argument& e) {
        throw ApiError(kInvalidRequest, std::string("'interface': ") + e.what());
      }
      r.interface = value.get<std::string>();
    } else if (key == "network") {
      if (!value.is_string() || value.get<std::string>().empty())
        throw ApiError(kInvalidRequest, "'network' must be the name of an L2 network");
      r.network = value.get<std::string>();
    } else {
      throw ApiError(kInvalidRequest,
                     "unknown field '" + key +
                         "' (expected netns or pid, and optionally token, name, interface, "
                         "network)");
    }
  }
  if (r.netns.empty() == (r.pid == 0)) {
    throw ApiError(kInvalidRequest, "give exactly one of 'netns' (a namespace path) or 'pid'");
  }
  return r;
}

}  // namespace kohaku::runner
