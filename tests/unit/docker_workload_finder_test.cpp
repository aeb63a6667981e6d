// The runner fast path's Docker source (runner/datapath/fast_path_sources.h) against a stand-in
// Docker Engine on a unix socket: no engine is an empty report, a call failing halfway through a
// pass is no report at all (a partial list would take the fast path from the containers it
// missed until the next pass).
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <string>
#include <thread>

#include "runner/datapath/fast_path_sources.h"

namespace kohaku::runner {
namespace {

// Answers each connection's one request with what `reply(path)` gives: {status, JSON body}.
class FakeDockerEngine {
 public:
  using Reply = std::function<std::pair<int, std::string>(const std::string& path)>;
  explicit FakeDockerEngine(Reply reply) : reply_(std::move(reply)) {
    path_ = std::filesystem::temp_directory_path() /
            ("kohaku-fake-docker-" + std::to_string(::getpid()) + ".sock");
    std::filesystem::remove(path_);
    fd_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(fd_, 16) != 0)
      throw std::runtime_error("fake Docker socket " + path_.string());
    thread_ = std::thread([this] { serve(); });
  }
  ~FakeDockerEngine() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
    std::filesystem::remove(path_);
  }
  std::string path() const { return path_.string(); }

 private:
  void serve() {
    while (!stop_) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string in;
      char buf[4096];
      while (in.find("\r\n\r\n") == std::string::npos) {
        ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) break;
        in.append(buf, static_cast<size_t>(n));
      }
      const auto start = in.find(' ') + 1;
      auto [status, body] = reply_(in.substr(start, in.find(' ', start) - start));
      std::string out = "HTTP/1.1 " + std::to_string(status) +
                        " X\r\nContent-Type: application/json\r\nConnection: close\r\n"
                        "Content-Length: " +
                        std::to_string(body.size()) + "\r\n\r\n" + body;
      (void)!::write(c, out.data(), out.size());
      ::close(c);
    }
  }

  Reply reply_;
  std::filesystem::path path_;
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// An engine with one network on bridge kbr-x whose inspection answers `inspect`.
FakeDockerEngine::Reply one_network(std::pair<int, std::string> inspect) {
  return [inspect](const std::string& path) -> std::pair<int, std::string> {
    if (ends_with(path, "/_ping")) return {200, "\"OK\""};
    if (ends_with(path, "/networks"))
      return {200, R"([{"Id": "n1", "Options": {"com.docker.network.bridge.name": "kbr-x"}}])"};
    if (ends_with(path, "/networks/n1")) return inspect;
    return {404, R"({"message": "no such thing"})"};
  };
}

TEST(DockerWorkloadFinder, NoEngineIsAnEmptyReport) {
  DockerWorkloadFinder finder("/nonexistent/docker.sock");
  auto found = finder.find({"kbr-x"});
  ASSERT_TRUE(found.has_value());
  EXPECT_TRUE(found->empty());
}

TEST(DockerWorkloadFinder, AnEngineWithoutContainersIsAnEmptyReport) {
  FakeDockerEngine engine(one_network({200, R"({"Id": "n1", "Containers": {}})"}));
  DockerWorkloadFinder finder(engine.path());
  auto found = finder.find({"kbr-x"});
  ASSERT_TRUE(found.has_value());
  EXPECT_TRUE(found->empty());
}

TEST(DockerWorkloadFinder, ACallFailingHalfwayIsNoReport) {
  FakeDockerEngine engine(one_network({500, R"({"message": "daemon busy"})"}));
  DockerWorkloadFinder finder(engine.path());
  EXPECT_FALSE(finder.find({"kbr-x"}).has_value());
}

}  // namespace
}  // namespace kohaku::runner
