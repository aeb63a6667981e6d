// Hostnames and runner URLs as every route validates them, and the client's own refusal to put
// unsafe text on the wire.
#include "common/wire/names.h"

#include <gtest/gtest.h>

#include "common/http_client.h"

namespace kohaku {
namespace {

std::string refusal(std::string_view text, bool url) {
  try {
    if (url)
      RunnerUrl::parse(text);
    else
      Hostname::parse(text);
  } catch (const InvalidName& e) {
    return e.what();
  }
  return "(accepted)";
}

TEST(Hostname, AcceptsRfc1123NamesAndUnderscore) {
  for (const char* ok : {"gpu-1", "a", "node_7", "rack1.gpu-3.example", "A1", "1a"})
    EXPECT_EQ(Hostname::parse(ok).str(), ok);
  EXPECT_EQ(Hostname::parse(std::string(63, 'a') + "." + std::string(63, 'b')).str().size(), 127u);
}

TEST(Hostname, RefusesWithTheRule) {
  EXPECT_NE(refusal("", false).find("empty"), std::string::npos);
  for (const char* bad : {".", "..", "a..b", ".a", "a."})
    EXPECT_NE(refusal(bad, false).find("empty label"), std::string::npos) << bad;
  EXPECT_NE(refusal("-a", false).find("'-'"), std::string::npos);
  EXPECT_NE(refusal("a-", false).find("'-'"), std::string::npos);
  EXPECT_NE(refusal(std::string(64, 'a'), false).find("63"), std::string::npos);
  EXPECT_NE(refusal(std::string(254, 'a'), false).find("253"), std::string::npos);
  EXPECT_NE(refusal("a b", false).find("only letters"), std::string::npos);
  // CR/LF never reaches a message raw: it is shown escaped.
  std::string msg = refusal("gpu\r\nX-Evil: 1", false);
  EXPECT_EQ(msg.find('\r'), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  EXPECT_NE(msg.find("\\x0d\\x0a"), std::string::npos) << msg;
}

TEST(RunnerUrl, AcceptsHttpIpv4AndPort) {
  auto u = RunnerUrl::parse("http://10.1.0.5:8001");
  EXPECT_EQ(u.ip.to_string(), "10.1.0.5");
  EXPECT_EQ(u.port, 8001);
  EXPECT_EQ(RunnerUrl::parse("http://10.1.0.5/").port, 80);
  EXPECT_EQ(RunnerUrl::parse("http://10.1.0.5:8001/").to_string(), "http://10.1.0.5:8001");
}

TEST(RunnerUrl, RefusesAnythingElse) {
  EXPECT_NE(refusal("https://10.1.0.5:8001", true).find("http://"), std::string::npos);
  EXPECT_NE(refusal("10.1.0.5:8001", true).find("http://"), std::string::npos);
  EXPECT_NE(refusal("http://runner.example:8001", true).find("IPv4"), std::string::npos);
  EXPECT_NE(refusal("http://10.1.0.5:0", true).find("1..65535"), std::string::npos);
  EXPECT_NE(refusal("http://10.1.0.5:8001/api", true).find("nothing may follow"),
            std::string::npos);
  EXPECT_NE(refusal("http://10.1.0.5:8001\r\nX-Injected: 1", true).find("nothing may follow"),
            std::string::npos);
  EXPECT_NE(refusal("http://user@10.1.0.5:8001", true).find("IPv4"), std::string::npos);
  std::string long_url = "http://10.1.0.5:8001/" + std::string(1 << 20, 'a');
  std::string msg = refusal(long_url, true);
  EXPECT_NE(msg.find("longer than 64"), std::string::npos);
  EXPECT_LT(msg.size(), 300u) << "a refused megabyte must not be echoed back";
}

TEST(HttpClientUrl, RefusesTextThatWouldInjectHeaders) {
  for (const char* bad : {"http://10.1.0.5:8001/x\r\nX-Injected: 1", "http://10.1.0.5\n:80",
                          "http://10.1.0.5:8001/a b"})
    EXPECT_THROW(http::BaseUrl::parse(bad), http::ClientError) << bad;
  EXPECT_THROW(http::BaseUrl::parse("http://10.1.0.5/" + std::string(4096, 'a')),
               http::ClientError);
}

}  // namespace
}  // namespace kohaku
