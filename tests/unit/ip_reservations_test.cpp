#include "host/overlay/ip_reservations.h"

#include <gtest/gtest.h>

#include "support/api_status.h"

namespace kohaku {
namespace {

Ipv4Addr ip(const char* text) {
  return Ipv4Addr::parse(text);
}

using test_support::status_of;

// Runner 1 owns 10.0.1.0/24: containers .2-.253, gateway .1, host .254.
class IpReservationBookTest : public ::testing::Test {
 protected:
  IpReservationBook book{SubnetScheme::parse("10.0.0.0/22/2/8")};
  int next_token = 0;
  std::string token() { return "tok" + std::to_string(next_token++); }

  void expect_adds_up(uint32_t runner) {
    auto c = book.counts(runner);
    EXPECT_EQ(c.total, 252u);
    EXPECT_EQ(c.total, c.available + c.reserved + c.used);
  }
};

TEST_F(IpReservationBookTest, ReservesLowestFreeContainerIp) {
  EXPECT_EQ(book.reserve(1, std::nullopt, token(), 0, 60000).ip, ip("10.0.1.2"));
  EXPECT_EQ(book.reserve(1, std::nullopt, token(), 0, 60000).ip, ip("10.0.1.3"));
  EXPECT_EQ(book.reserve(2, std::nullopt, token(), 0, 60000).ip, ip("10.0.2.2"));
  auto c = book.counts(1);
  EXPECT_EQ(c.reserved, 2u);
  EXPECT_EQ(c.available, 250u);
  expect_adds_up(1);
}

// The search for the lowest free address starts past the taken ones (a busy runner is not
// walked on every reserve), yet an address freed below that point, by release, expiry or a
// rolled-back change, is the next one handed out again.
TEST_F(IpReservationBookTest, LowestFreeStaysLowestAcrossReleasesExpiriesAndRollbacks) {
  std::vector<std::string> tokens;
  for (int i = 0; i < 6; ++i)
    tokens.push_back(book.reserve(1, std::nullopt, token(), 0, 60000).token);
  EXPECT_EQ(book.available(1, 1).front(), ip("10.0.1.8"));
  book.release_token(tokens[2]);  // 10.0.1.4
  EXPECT_EQ(book.reserve(1, std::nullopt, token(), 0, 60000).ip, ip("10.0.1.4"));
  EXPECT_EQ(book.reserve(1, std::nullopt, token(), 0, 60000).ip, ip("10.0.1.8"));
  book.accept();
  book.reserve(1, std::nullopt, token(), 0, 60000);  // 10.0.1.9, then taken back
  book.rollback();
  EXPECT_EQ(book.available(1, 2), (std::vector<Ipv4Addr>{ip("10.0.1.9"), ip("10.0.1.10")}));
  // Already taken: refused, and nothing moves.
  EXPECT_EQ(status_of([&] { book.reserve(1, ip("10.0.1.3"), token(), 0, 60000); }), 409);
  book.release_token(tokens[0]);  // 10.0.1.2
  EXPECT_EQ(book.reserve(1, std::nullopt, token(), 0, 60000).ip, ip("10.0.1.2"));
  book.reserve(1, std::nullopt, "short", 0, 1000);  // 10.0.1.9, expires at 1 s
  EXPECT_EQ(book.expire(2000), 1u);
  EXPECT_EQ(book.reserve(1, std::nullopt, token(), 0, 60000).ip, ip("10.0.1.9"));
  expect_adds_up(1);
}

TEST_F(IpReservationBookTest, ChosenIpMustBeAFreeContainerIpOfThatRunner) {
  for (const char* bad :
       {"10.0.1.0", "10.0.1.1", "10.0.1.254", "10.0.1.255", "10.0.2.5", "192.168.1.5"})
    EXPECT_EQ(status_of([&] { book.reserve(1, ip(bad), token(), 0, 60000); }), 400) << bad;
  EXPECT_EQ(book.reserve(1, ip("10.0.1.200"), token(), 0, 60000).ip, ip("10.0.1.200"));
  EXPECT_EQ(status_of([&] { book.reserve(1, ip("10.0.1.200"), token(), 0, 60000); }), 409);
  book.use_ip(1, ip("10.0.1.201"), "c1", 0);
  EXPECT_EQ(status_of([&] { book.reserve(1, ip("10.0.1.201"), token(), 0, 60000); }), 409);
  EXPECT_EQ(book.counts(1).reserved, 1u) << "refused requests change nothing";
  expect_adds_up(1);
}

TEST_F(IpReservationBookTest, UnusedReservationsExpireUsedOnesNever) {
  std::string a = book.reserve(1, std::nullopt, "a", 0, 60000).token;
  std::string b = book.reserve(1, std::nullopt, "b", 0, 60000).token;
  book.use_token(b, "container-b");
  EXPECT_EQ(book.expire(59999), 0u);
  EXPECT_NE(book.find_token(a), nullptr);
  EXPECT_EQ(book.expire(60000), 1u);
  EXPECT_EQ(book.find_token(a), nullptr);
  EXPECT_EQ(book.expire(10'000'000), 0u);
  ASSERT_NE(book.find_token(b), nullptr);
  EXPECT_TRUE(book.find_token(b)->is_used);
  EXPECT_EQ(status_of([&] { book.use_token(a, "late"); }), 404);
  expect_adds_up(1);
}

TEST_F(IpReservationBookTest, UseAndReleaseRules) {
  std::string t = book.reserve(1, std::nullopt, "t", 0, 60000).token;
  EXPECT_EQ(status_of([&] { book.use_token("nope", "c"); }), 404);
  EXPECT_EQ(book.use_token(t, "c1").container_id, "c1");
  EXPECT_EQ(status_of([&] { book.use_token(t, "c1"); }), 200) << "same container: no change";
  EXPECT_EQ(status_of([&] { book.use_token(t, "c2"); }), 409);
  EXPECT_EQ(status_of([&] { book.release_token(t); }), 409) << "in use: release the container";
  EXPECT_EQ(status_of([&] { book.release_token("nope"); }), 404);

  // An address Docker picked itself, reported by the runner.
  book.use_ip(1, ip("10.0.1.50"), "c1", 5);
  EXPECT_EQ(status_of([&] { book.use_ip(1, ip("10.0.1.50"), "c2", 5); }), 409);
  EXPECT_EQ(status_of([&] { book.use_ip(1, ip("10.0.1.254"), "c2", 5); }), 400);
  // A container seen holding a reserved address fulfils the reservation: it becomes used (and
  // never expires back into the pool while the container holds it).
  std::string r = book.reserve(1, ip("10.0.1.60"), "r", 0, 60000).token;
  EXPECT_EQ(status_of([&] { book.use_ip(1, ip("10.0.1.60"), "c3", 5); }), 200);
  EXPECT_EQ(status_of([&] { book.use_token(r, "c3"); }), 200) << "token now names c3's address";
  EXPECT_EQ(status_of([&] { book.use_token(r, "c4"); }), 409);
  auto c = book.counts(1);
  EXPECT_EQ(c.used, 3u);
  EXPECT_EQ(c.reserved, 0u);
  expect_adds_up(1);

  auto freed = book.release_container("c1", std::nullopt);
  EXPECT_EQ(freed.size(), 2u);
  EXPECT_EQ(book.counts(1).used, 1u);
  EXPECT_EQ(status_of([&] { book.release_token(r); }), 409) << "in use by c3";
  EXPECT_EQ(book.release_container("c3", std::nullopt).size(), 1u);
  EXPECT_EQ(book.counts(1).available, 252u);
}

TEST_F(IpReservationBookTest, ReleaseByContainerCanBeLimitedToARunner) {
  book.use_ip(1, ip("10.0.1.9"), "same-name", 0);
  book.use_ip(2, ip("10.0.2.9"), "same-name", 0);
  EXPECT_EQ(book.release_container("same-name", 2u).size(), 1u);
  EXPECT_NE(book.find(1, ip("10.0.1.9")), nullptr);
}

TEST_F(IpReservationBookTest, AvailableSkipsTakenAndHostAddressesAndFullSubnetRefuses) {
  book.reserve(1, ip("10.0.1.2"), token(), 0, 60000);
  book.use_ip(1, ip("10.0.1.4"), "c", 0);
  auto first = book.available(1, 3);
  ASSERT_EQ(first.size(), 3u);
  EXPECT_EQ(first[0], ip("10.0.1.3"));
  EXPECT_EQ(first[1], ip("10.0.1.5"));
  EXPECT_EQ(first[2], ip("10.0.1.6"));
  auto all = book.available(1, 1000);
  EXPECT_EQ(all.size(), 250u);
  EXPECT_EQ(all.back(), ip("10.0.1.253"));
  while (book.counts(1).available > 0) book.reserve(1, std::nullopt, token(), 0, 60000);
  EXPECT_EQ(status_of([&] { book.reserve(1, std::nullopt, token(), 0, 60000); }), 409);
  expect_adds_up(1);
}

TEST_F(IpReservationBookTest, StatsCountReservationsAndUsedIps) {
  book.reserve(1, std::nullopt, "p", 0, 60000);
  std::string u = book.reserve(1, std::nullopt, "u", 0, 60000).token;
  book.use_token(u, "c1");
  book.use_ip(2, ip("10.0.2.7"), "c2", 0);
  auto s = book.stats();
  EXPECT_EQ(s.total_reservations, 2u);
  EXPECT_EQ(s.pending_reservations, 1u);
  EXPECT_EQ(s.in_use_reservations, 1u);
  EXPECT_EQ(s.total_used_ips, 2u);
  EXPECT_EQ(s.runners_with_used_ips, 2u);
  EXPECT_EQ(book.list(std::nullopt, false).size(), 1u);
  EXPECT_EQ(book.list(std::nullopt, true).size(), 3u);
  EXPECT_EQ(book.list(2u, true).size(), 1u);
}

TEST_F(IpReservationBookTest, DropRunnerAndReplayRoundTrip) {
  book.reserve(1, std::nullopt, "x", 0, 60000);
  book.use_ip(1, ip("10.0.1.100"), "c", 0);
  book.reserve(2, std::nullopt, "y", 0, 60000);
  IpReservationBook copy{SubnetScheme::parse("10.0.0.0/22/2/8")};
  for (const auto& e : book.all())
    copy.put(IpReservationBook::from_json(IpReservationBook::to_json(e)));
  EXPECT_EQ(copy.find_token("x")->ip, ip("10.0.1.2"));
  EXPECT_EQ(copy.find(1, ip("10.0.1.100"))->container_id, "c");
  EXPECT_EQ(copy.expire(60000), 2u) << "expiry order is rebuilt on replay";

  EXPECT_EQ(book.drop_runner(1).size(), 2u);
  EXPECT_EQ(book.counts(1).available, 252u);
  EXPECT_NE(book.find_token("y"), nullptr);
  IpEntry host_address;
  host_address.runner_id = 1;
  host_address.ip = ip("10.0.1.254");
  EXPECT_THROW(copy.put(host_address), std::invalid_argument);
}

}  // namespace
}  // namespace kohaku
