#include "common/wire/names.h"

#include <charconv>

namespace kohaku {

std::string printable(std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  constexpr size_t kShown = 64;
  std::string out = "'";
  for (size_t i = 0; i < text.size() && i < kShown; ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x20 || c >= 0x7f || c == '\\') {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    } else {
      out.push_back(static_cast<char>(c));
    }
  }
  out += "'";
  if (text.size() > kShown) out += " (" + std::to_string(text.size()) + " characters)";
  return out;
}

Hostname Hostname::parse(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return InvalidName("hostname " + printable(text) + " is not valid: " + why);
  };
  if (text.empty()) throw bad("it is empty");
  if (text.size() > kMaxLength)
    throw bad("longer than " + std::to_string(kMaxLength) + " characters");
  size_t start = 0;
  while (true) {
    size_t dot = text.find('.', start);
    std::string_view label = text.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (label.empty()) throw bad("it has an empty label (leading, trailing or double '.')");
    if (label.size() > 63) throw bad("a label is longer than 63 characters");
    if (label.front() == '-' || label.back() == '-') throw bad("a label starts or ends with '-'");
    for (unsigned char c : label)
      if (!std::isalnum(c) && c != '-' && c != '_')
        throw bad("only letters, digits, '-', '_' and '.' are allowed");
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return Hostname(std::string(text));
}

RunnerUrl RunnerUrl::parse(std::string_view text) {
  auto bad = [&](const std::string& why) {
    return InvalidName("url " + printable(text) + " is not valid: " + why +
                       " (expected http://IPV4[:PORT])");
  };
  if (text.size() > kMaxLength)
    throw bad("longer than " + std::to_string(kMaxLength) + " characters");
  constexpr std::string_view kScheme = "http://";
  if (!text.starts_with(kScheme)) throw bad("the scheme must be http://");
  std::string_view rest = text.substr(kScheme.size());
  if (rest.ends_with('/')) rest.remove_suffix(1);
  size_t colon = rest.find(':');
  RunnerUrl url;
  auto ip = Ipv4Addr::try_parse(rest.substr(0, colon));
  if (!ip) throw bad("the host must be an IPv4 address and nothing may follow the port");
  url.ip = *ip;
  if (colon != std::string_view::npos) {
    std::string_view port_text = rest.substr(colon + 1);
    unsigned port = 0;
    auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (port_text.empty() || ec != std::errc() || ptr != port_text.data() + port_text.size() ||
        port < 1 || port > 65535)
      throw bad("the port must be 1..65535 and nothing may follow it");
    url.port = static_cast<uint16_t>(port);
  }
  return url;
}

std::string RunnerUrl::to_string() const {
  return "http://" + ip.to_string() + ":" + std::to_string(port);
}

}  // namespace kohaku
