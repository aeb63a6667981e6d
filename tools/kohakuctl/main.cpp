// kohakuctl: command-line client for kohaku-hostd's HTTP API.
#include <iostream>
#include <string>
#include <vector>

#include "command_line.h"
#include "commands.h"
#include "common/http_client.h"
#include "connection_defaults.h"

int main(int argc, char** argv) {
  try {
    kohakuctl::CommandLine cl =
        kohakuctl::parse_command_line(std::vector<std::string>(argv + 1, argv + argc));
    if (cl.help) {
      std::cout << *cl.help;
      return 0;
    }
    kohakuctl::Invocation& inv = cl.inv;
    if (!cl.host_given) inv.host = kohakuctl::default_host();
    if (!cl.token_given) inv.token = kohakuctl::default_token(inv.host);
    kohaku::http::ClientOptions options;
    options.bearer_token = inv.token;
    kohaku::http::HttpClient client(inv.host, options);
    return kohakuctl::run_command(inv, client, std::cout);
  } catch (const kohakuctl::UsageError& e) {
    std::cerr << "kohakuctl: " << e.what() << "\n";
    if (!e.usage().empty()) std::cerr << "\n" << e.usage();
    return 2;
  } catch (const std::exception& e) {
    // API errors, refused confirmations and transport failures (which name the URL).
    std::cerr << "kohakuctl: error: " << e.what() << "\n";
    return 1;
  }
}
