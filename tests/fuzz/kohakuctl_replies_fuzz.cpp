// Fuzz target: kohakuctl's handling of what a server replies, for every verb, in table and
// --json output. Input: the first byte picks the HTTP status (200, 404, 409, 500), the rest is
// the body, served by a stand-in server on loopback. A verb ends with an exit status or one of
// kohakuctl's own errors (CommandError, UsageError, a transport ClientError); a raw nlohmann
// exception would print a library message as kohakuctl's and counts as a bug, as does a crash.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "api/canned_http_server.h"
#include "kohakuctl/command_line.h"
#include "kohakuctl/commands.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static kohaku::test::CannedHttpServer server(200, "{}");
  static const std::vector<std::vector<std::string>> kVerbs = {
      {"node", "overlay"},
      {"node", "overlay", "gpu-1"},
      {"node", "summary"},
      {"ip-reserve", "gpu-1"},
      {"ip-release", "tok"},
      {"ip-list"},
      {"ip-info", "gpu-1"},
      {"ip-available"},
      {"ip-stats"},
      {"ip-validate", "tok"},
      {"overlay-cleanup"},
      {"overlay-release", "gpu-1"},
      {"node", "list"},
      {"node", "status", "gpu-1"},
      {"node", "health"},
      {"node", "ip-release", "gpu-1", "--token", "tok"},
      {"node", "ip-info", "gpu-1", "--token", "tok"},
      {"network", "list"},
      {"network", "show", "train"}};
  if (size == 0) return 0;
  static const int kStatus[] = {200, 404, 409, 500};
  server.set_reply(kStatus[data[0] % 4],
                   std::string(reinterpret_cast<const char*>(data) + 1, size - 1));
  kohaku::http::ClientOptions options;
  options.timeout = std::chrono::seconds(5);
  kohaku::http::HttpClient client(server.url(), options);
  const auto& verb = kVerbs[size % kVerbs.size()];
  for (bool json : {false, true}) {
    // Through the real parser, so the fuzzer drives the forms users type.
    std::vector<std::string> args = verb;
    if (json) args.push_back("--json");
    if (verb[0].starts_with("overlay-")) args.push_back("-f");
    kohakuctl::Invocation inv = kohakuctl::parse_command_line(args).inv;
    inv.host = server.url();
    std::ostringstream out;
    try {
      (void)kohakuctl::run_command(inv, client, out);
    } catch (const kohakuctl::CommandError&) {
    } catch (const kohakuctl::UsageError&) {
    } catch (const kohaku::http::ClientError&) {
    } catch (const std::exception& e) {
      std::fprintf(stderr, "kohakuctl %s: escaped: %s\n", verb.front().c_str(), e.what());
      std::abort();
    } catch (...) {
      std::abort();
    }
  }
  return 0;
}
