#pragma once
// kohakuctl's node verbs: `node summary`, `node list`, `node status HOST`, `node health [HOST]`,
// all from GET /api/nodes, printed as KohakuRiver's CLI prints them (missing fields as "-").
#include <ostream>

#include "commands.h"
#include "common/http_client.h"

namespace kohakuctl {

int node_summary(const Invocation& inv, const kohaku::http::HttpClient& c, std::ostream& out);
int node_list(const Invocation& inv, const kohaku::http::HttpClient& c, std::ostream& out);
int node_status(const Invocation& inv, const kohaku::http::HttpClient& c, std::ostream& out);
int node_health(const Invocation& inv, const kohaku::http::HttpClient& c, std::ostream& out);

}  // namespace kohakuctl
