#pragma once
// What every kohakuctl verb does around its API call: fail on an error reply, print JSON, ask
// before destroying something.
#include <nlohmann/json.hpp>
#include <ostream>
#include <string>

#include "commands.h"
#include "common/http_client.h"

namespace kohakuctl {

// The reply's JSON; CommandError "<API error> (HTTP <status>)" for an error reply.
nlohmann::json checked(const kohaku::http::ClientResponse& res);

void print_json(std::ostream& out, const nlohmann::json& j);

// Destructive verbs ask first; without a terminal to ask on they refuse rather than guess.
// CommandError when refused; returns at once with -f.
void confirm(const Invocation& inv, const std::string& question);

}  // namespace kohakuctl
