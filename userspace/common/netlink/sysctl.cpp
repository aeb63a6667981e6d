#include "common/netlink/sysctl.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

#include "common/log.h"
#include "common/netlink/link.h"
#include "common/netlink/nl_socket.h"

namespace kohaku::netlink {
namespace {

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

std::string sysctl_path(std::string_view key) {
  if (key.empty() || key.find("..") != std::string_view::npos || key.front() == '/' ||
      key.front() == '.') {
    throw std::invalid_argument("invalid sysctl key '" + std::string(key) + "'");
  }
  std::string rel(key);
  if (rel.find('/') == std::string::npos) {
    for (char& c : rel) {
      if (c == '.') c = '/';
    }
  }
  return "/proc/sys/" + rel;
}

std::string read_sysctl(std::string_view key) {
  std::string path = sysctl_path(key);
  Fd f{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (f.fd < 0) throw_errno("read sysctl " + std::string(key) + " (" + path + ")", errno);
  std::string out;
  char buf[512];
  for (;;) {
    ssize_t n = ::read(f.fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("read sysctl " + std::string(key), errno);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out;
}

void write_sysctl(std::string_view key, std::string_view value) {
  std::string path = sysctl_path(key);
  std::string what = "write sysctl " + std::string(key) + "=" + std::string(value);
  Fd f{::open(path.c_str(), O_WRONLY | O_CLOEXEC)};
  if (f.fd < 0) throw_errno(what, errno);
  std::string v(value);
  v.push_back('\n');
  // A sysctl takes the whole value in one write; a short or failed write means it was refused.
  ssize_t n = ::write(f.fd, v.data(), v.size());
  if (n < 0) throw_errno(what, errno);
  if (static_cast<size_t>(n) != v.size()) throw_errno(what, EIO);
}

bool ensure_sysctl(std::string_view key, std::string_view value) {
  std::string have = read_sysctl(key);
  if (have == value) return false;
  write_sysctl(key, value);
  log::info("netlink", "sysctl " + std::string(key) + ": " + have + " -> " + std::string(value));
  return true;
}

std::string ipv4_conf_key(std::string_view dev, std::string_view setting) {
  if (dev != "all" && dev != "default") validate_link_name(dev);
  return "net/ipv4/conf/" + std::string(dev) + "/" + std::string(setting);
}

}  // namespace kohaku::netlink
