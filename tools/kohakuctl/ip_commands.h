#pragma once
// kohakuctl's ip-* verbs: container IP reservations on the host (docs/api.md, "IP
// reservations"). Each checks the reply's shape and prints a table, or the JSON with --json.
#include <ostream>

#include "commands.h"
#include "common/http_client.h"

namespace kohakuctl {

int ip_reserve(const Invocation& inv, const kohaku::http::HttpClient& c, std::ostream& out);
int ip_release(const Invocation& inv, const kohaku::http::HttpClient& c, std::ostream& out);
int ip_list(const Invocation& inv, const kohaku::http::HttpClient& c, std::ostream& out);
int ip_info(const Invocation& inv, const kohaku::http::HttpClient& c, std::ostream& out);
int ip_available(const Invocation& inv, const kohaku::http::HttpClient& c, std::ostream& out);
int ip_stats(const Invocation& inv, const kohaku::http::HttpClient& c, std::ostream& out);
int ip_validate(const Invocation& inv, const kohaku::http::HttpClient& c, std::ostream& out);

}  // namespace kohakuctl
