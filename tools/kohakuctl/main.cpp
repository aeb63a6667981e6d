// kohakuctl: command-line client for kohaku-hostd's HTTP API.
#include <iostream>
#include <string>

#include "commands.h"
#include "common/http_client.h"
#include "connection_defaults.h"
#include "network_commands.h"

namespace {

using kohakuctl::Invocation;
using kohakuctl::UsageError;

// Options may appear before or after the command words, as with most CLIs.
Invocation parse(int argc, char** argv, bool* help) {
  Invocation inv;
  inv.host = kohakuctl::default_host();
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool inline_value = false;
    if (arg.rfind("--", 0) == 0 && arg.find('=') != std::string::npos) {
      value = arg.substr(arg.find('=') + 1);
      arg = arg.substr(0, arg.find('='));
      inline_value = true;
    }
    auto take = [&]() -> std::string {
      if (inline_value) return value;
      if (i + 1 >= argc) throw UsageError(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "-h" || arg == "--help") {
      *help = true;
    } else if (arg == "--host") {
      inv.host = take();
    } else if (arg == "--token") {
      inv.token = take();
    } else if (arg == "--json") {
      inv.json = true;
    } else if (arg == "-f" || arg == "--force") {
      inv.force = true;
    } else if (arg == "--ip") {
      inv.ip = take();
    } else if (arg == "--ttl") {
      inv.ttl = take();
    } else if (arg == "--runner") {
      inv.runner = take();
    } else if (arg == "--limit") {
      inv.limit = take();
    } else if (arg.size() > 1 && arg[0] == '-') {
      throw UsageError("unknown option " + arg);
    } else {
      inv.words.push_back(arg);
    }
  }
  if (inv.token.empty()) inv.token = kohakuctl::default_token(inv.host);
  return inv;
}

}  // namespace

int main(int argc, char** argv) {
  if (auto rc = kohakuctl::maybe_run_network_command(argc, argv)) return *rc;
  try {
    bool help = false;
    Invocation inv = parse(argc, argv, &help);
    if (help) {
      std::cout << kohakuctl::usage_text();
      return 0;
    }
    kohaku::http::ClientOptions options;
    options.bearer_token = inv.token;
    kohaku::http::HttpClient client(inv.host, options);
    return kohakuctl::run_command(inv, client, std::cout);
  } catch (const UsageError& e) {
    std::cerr << "kohakuctl: " << e.what() << "\n\n" << kohakuctl::usage_text();
    return 2;
  } catch (const std::exception& e) {
    // API errors, refused confirmations and transport failures (which name the URL).
    std::cerr << "kohakuctl: error: " << e.what() << "\n";
    return 1;
  }
}
