#include "command_support.h"

#include <unistd.h>

#include <iostream>

namespace kohakuctl {

using kohaku::http::ClientResponse;
using nlohmann::json;

json checked(const ClientResponse& res) {
  if (!res.ok())
    throw CommandError(res.error_message() + " (HTTP " + std::to_string(res.status) + ")");
  return res.json();
}

void confirm(const Invocation& inv, const std::string& question) {
  if (inv.force) return;
  if (!isatty(STDIN_FILENO))
    throw CommandError("refusing to " + question +
                       " without confirmation: stdin is not a terminal (pass -f to skip the "
                       "question)");
  std::cerr << "About to " << question << ". Continue? [y/N] " << std::flush;
  std::string answer;
  std::getline(std::cin, answer);
  if (answer != "y" && answer != "Y" && answer != "yes")
    throw CommandError("aborted: nothing changed");
}

void print_json(std::ostream& out, const json& j) {
  out << j.dump(2) << "\n";
}

}  // namespace kohakuctl
