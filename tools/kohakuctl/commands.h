#pragma once
// kohakuctl's verbs: each turns an Invocation into one API call and prints the answer.
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/http_client.h"

namespace kohakuctl {

// Bad command line: printed with the usage, exit status 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Anything else that makes the command fail (API error, refused confirmation): exit status 1.
class CommandError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Invocation {
  std::string host;   // base URL
  std::string token;  // bearer token, may be empty
  bool json = false;  // print the API's JSON instead of tables
  bool force = false;
  std::vector<std::string> words;  // command words and positional arguments, in order
  std::optional<std::string> ip, ttl, runner, limit;
};

// Runs the command named by inv.words; returns the exit status. Throws UsageError, CommandError
// (also for a reply of an unexpected shape) or http::ClientError.
int run_command(const Invocation& inv, const kohaku::http::HttpClient& client, std::ostream& out);

const char* usage_text();

}  // namespace kohakuctl
