#pragma once
// `kohakuctl network ...`: named L2 networks (docs/l2-networks.md).
#include <ostream>

#include "commands.h"
#include "common/http_client.h"

namespace kohakuctl {

int network_create(const Invocation& inv, const kohaku::http::HttpClient& c, std::ostream& out);
int network_delete(const Invocation& inv, const kohaku::http::HttpClient& c, std::ostream& out);
int network_list(const Invocation& inv, const kohaku::http::HttpClient& c, std::ostream& out);
int network_show(const Invocation& inv, const kohaku::http::HttpClient& c, std::ostream& out);
int network_join(const Invocation& inv, const kohaku::http::HttpClient& c, std::ostream& out);
int network_leave(const Invocation& inv, const kohaku::http::HttpClient& c, std::ostream& out);

}  // namespace kohakuctl
