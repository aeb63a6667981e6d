#include "connection_defaults.h"

#include <cstdlib>
#include <fstream>
#include <optional>

#include "common/ipv4.h"

namespace kohakuctl {
namespace {

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? v : fallback;
}

// "http://127.0.0.1:8000/..." -> true; any other host -> false.
bool names_this_machine(const std::string& url) {
  std::string rest = url;
  if (auto scheme = rest.find("://"); scheme != std::string::npos) rest = rest.substr(scheme + 3);
  const std::string host = rest.substr(0, rest.find_first_of(":/"));
  if (host == "localhost") return true;
  auto ip = kohaku::Ipv4Addr::try_parse(host);
  return ip && ip->is_loopback();
}

}  // namespace

std::string default_host() {
  return env_or("KOHAKU_HOST", "http://127.0.0.1:8000");
}

std::string default_token(const std::string& host) {
  if (std::string t = env_or("KOHAKU_TOKEN", ""); !t.empty()) return t;
  if (!names_this_machine(host)) return {};
  std::ifstream in(env_or("KOHAKU_TOKEN_FILE", "/var/lib/kohaku/api_token"));
  std::string token;
  if (!in || !std::getline(in, token)) return {};
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ')) token.pop_back();
  return token;
}

}  // namespace kohakuctl
