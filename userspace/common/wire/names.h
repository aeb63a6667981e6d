#pragma once
// Validated types for the names and addresses that arrive over the wire and are later written
// into requests, logs, device maps and state files: a runner's hostname and the URL the host
// calls it back on. Every route and the registration use these, so a value with CR/LF, a
// megabyte of text or an empty label is refused at the door with the reason, never stored.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

#include "common/ipv4.h"

namespace kohaku {

// Why a value was refused; what() names the field's rule, with the value shown by printable().
class InvalidName : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// A runner hostname as RFC 1123 allows it, plus '_' (Docker and some clusters use it):
// 1..253 characters, dot-separated labels of 1..63 letters, digits, '-' or '_', none starting
// or ending with '-'. So "." and ".." and "a..b" are not hostnames.
class Hostname {
 public:
  static constexpr size_t kMaxLength = 253;
  // Throws InvalidName.
  static Hostname parse(std::string_view text);
  const std::string& str() const { return text_; }

 private:
  explicit Hostname(std::string text) : text_(std::move(text)) {}
  std::string text_;
};

// Where the host reaches a runner's API: "http://A.B.C.D[:PORT][/]" and nothing else (no path,
// no user info, no https: the host's client speaks plain HTTP to runners).
struct RunnerUrl {
  static constexpr size_t kMaxLength = 64;
  Ipv4Addr ip;
  uint16_t port = 80;

  // Throws InvalidName.
  static RunnerUrl parse(std::string_view text);
  std::string to_string() const;  // "http://A.B.C.D:PORT"
};

// text for an error message: at most 64 characters, control characters and non-ASCII as \xNN,
// in single quotes. Never lets a refused value inject lines into a log or a reply.
std::string printable(std::string_view text);

}  // namespace kohaku
