#pragma once
// kohakuctl's verbs: each turns an Invocation (built by command_line.h) into API calls and prints
// the answer.
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/http_client.h"

namespace kohakuctl {

// Bad command line: exit status 2, the message then the usage of the command it was meant for.
class UsageError : public std::runtime_error {
 public:
  explicit UsageError(const std::string& what, std::string usage = {})
      : std::runtime_error(what), usage_(std::move(usage)) {}
  const std::string& usage() const { return usage_; }

 private:
  std::string usage_;
};

// Anything else that makes the command fail (API error, refused confirmation): exit status 1.
class CommandError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Invocation {
  std::string host;   // base URL
  std::string token;  // API bearer token, may be empty
  bool json = false;  // print the API's JSON instead of tables
  bool force = false;
  // The canonical command, e.g. "node ip-reserve" or "network create"; the top-level aliases
  // (`ip-reserve`, ...) parse to their `node` command.
  std::string command;
  std::vector<std::string> args;  // positional arguments, in order
  std::optional<std::string> ip, ttl, runner, limit, status;
  std::optional<std::string> reservation_token;  // `node ip-release HOST --token T`
  // network create
  std::optional<std::string> subnet, gateway, vni, runners;
  bool no_outbound_nat = false;

  // args[i], or nullopt when fewer were given.
  std::optional<std::string> arg(size_t i) const {
    return i < args.size() ? std::optional<std::string>(args[i]) : std::nullopt;
  }
};

// Runs inv.command; returns the exit status. Throws UsageError, CommandError (also for a reply of
// an unexpected shape) or http::ClientError.
int run_command(const Invocation& inv, const kohaku::http::HttpClient& client, std::ostream& out);

}  // namespace kohakuctl
