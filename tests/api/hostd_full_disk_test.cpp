// A write that fails changes nothing: with STATE_DIR on a full filesystem, reserve, use and
// register answer 500 and the daemon's answers (and, after the disk has room again and the
// daemon restarts, its state) are exactly as before. The tmpfs is mounted in the test binary's
// private mount namespace (tests/support/isolated_test_main.cpp), never in the root's.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "host_api_helpers.h"
#include "hostd_process.h"

namespace kohaku::test {
namespace {

// Fills the filesystem holding dir with one file until ENOSPC; returns its path.
std::filesystem::path fill(const std::filesystem::path& dir) {
  auto path = dir / "filler";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  EXPECT_GE(fd, 0) << std::strerror(errno);
  std::string block(4096, 'x');
  while (::write(fd, block.data(), block.size()) > 0) {
  }
  EXPECT_EQ(errno, ENOSPC) << std::strerror(errno);
  // Leftover bytes smaller than a page can still fit a short record: take them too.
  while (::write(fd, "x", 1) > 0) {
  }
  ::close(fd);
  return path;
}

class HostdFullDisk : public ::testing::Test {
 protected:
  void SetUp() override {
    std::filesystem::create_directories(hostd_.state_dir());
    ASSERT_EQ(::mount("tmpfs", hostd_.state_dir().c_str(), "tmpfs", MS_NOSUID | MS_NODEV,
                      "size=1m,mode=0700"),
              0)
        << std::strerror(errno);
    mounted_ = true;
    hostd_.start();
  }
  void TearDown() override {
    hostd_.kill9();
    if (mounted_) ::umount2(hostd_.state_dir().c_str(), MNT_DETACH);
  }
  Hostd hostd_;
  bool mounted_ = false;
};

TEST_F(HostdFullDisk, FailedWritesChangeNothing) {
  auto c = hostd_.client();
  const std::string credential = register_runner(c, "gpu-1", "10.1.0.5")["runner_credential"];
  const std::string pending = reserve_ip(c, "gpu-1")["token"];
  auto filler = fill(hostd_.state_dir());
  // The journal's last page may still have room for a few records: reserve until the disk
  // really refuses. The state just before the refused request is what must remain.
  json before;
  http::ClientResponse refused;
  std::vector<std::string> taken;
  for (int i = 0; i < 100; ++i) {
    before = visible_state(c, "gpu-1");
    refused = c.post("/api/overlay/ip/reserve?runner=gpu-1");
    if (refused.status != 200) break;
    taken.push_back(refused.json()["token"]);
  }
  ASSERT_EQ(refused.status, 500) << refused.body;
  EXPECT_NE(refused.error_message().find("nothing changed"), std::string::npos) << refused.body;
  EXPECT_EQ(visible_state(c, "gpu-1"), before) << "a failed reserve changed memory";
  // A release record is shorter than a reserve record (which carries the token): fill what is
  // left of the page with those too, so every record below is refused.
  for (const auto& t : taken) {
    json now = visible_state(c, "gpu-1");
    if (c.post("/api/overlay/ip/release?token=" + t).status != 200) {
      EXPECT_EQ(visible_state(c, "gpu-1"), now) << "a failed release changed memory";
      break;
    }
    before = visible_state(c, "gpu-1");
  }

  auto reserve = c.post("/api/overlay/ip/reserve?runner=gpu-1&ip=10.128.64.50");
  EXPECT_EQ(reserve.status, 500) << reserve.body;
  auto use = c.post("/api/overlay/ip/use?token=" + pending + "&container_id=ctr-1");
  EXPECT_EQ(use.status, 500) << use.body;
  auto own = c.request("POST", "/api/overlay/ip/use?runner=gpu-1&ip=10.128.64.60&container_id=d",
                       {}, {}, {{"X-Kohaku-Runner-Credential", credential}});
  EXPECT_EQ(own.status, 500) << own.body;
  auto reg = c.post("/api/register", json{{"hostname", "gpu-2"}, {"url", "http://10.1.0.6:8001"}});
  EXPECT_EQ(reg.status, 500) << reg.body;
  auto release = c.post("/api/overlay/ip/release?token=" + pending);
  EXPECT_EQ(release.status, 500) << release.body;
  EXPECT_EQ(visible_state(c, "gpu-1"), before) << "a failed write changed memory";
  // The address refused a moment ago is still free, not held by a phantom reservation.
  auto available = get_json(c, "/api/overlay/ip/available?runner=gpu-1&limit=1000");
  bool fifty_free = false;
  for (const auto& ip : available["available_ips"]["gpu-1"]) fifty_free |= ip == "10.128.64.50";
  EXPECT_TRUE(fifty_free);

  // With room again everything works, and what memory shows is what a restart finds.
  std::filesystem::remove(filler);
  EXPECT_EQ(c.post("/api/overlay/ip/reserve?runner=gpu-1&ip=10.128.64.50").status, 200);
  // The refused registration left nothing in the registry's indexes either: gpu-2 now gets the
  // id (and subnet) it would have got then.
  auto second = register_runner(c, "gpu-2", "10.1.0.6");
  EXPECT_EQ(second["created"], true) << second;
  EXPECT_EQ(second["overlay"]["runner_id"], 2) << second;
  const json after = visible_state(c, "gpu-1");
  hostd_.stop();
  hostd_.start();
  EXPECT_EQ(visible_state(hostd_.client(), "gpu-1"), after);
}

}  // namespace
}  // namespace kohaku::test
