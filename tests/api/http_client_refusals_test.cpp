// The HTTP client refuses to put text on the wire that would inject headers, before it
// connects: the server sees no request at all.
#include <gtest/gtest.h>

#include "canned_http_server.h"
#include "common/http_client.h"

namespace kohaku::test {
namespace {

TEST(HttpClientRefusals, UnsafeTargetIsNotSent) {
  CannedHttpServer server(200, "{}");
  http::HttpClient client(server.url());
  for (const char* target : {"/api/x\r\nX-Injected: 1", "/api/x y", "/api/\x7f"}) {
    try {
      client.get(target);
      ADD_FAILURE() << "sent " << target;
    } catch (const http::ClientError& e) {
      EXPECT_NE(std::string(e.what()).find("refusing to send"), std::string::npos) << e.what();
    }
  }
  EXPECT_EQ(client.get("/api/x").status, 200);
  EXPECT_EQ(server.requests(), 1);
}

TEST(HttpClientRefusals, UnsafeBaseUrlIsRefused) {
  CannedHttpServer server(200, "{}");
  EXPECT_THROW(http::HttpClient(server.url() + "/\r\nX-Injected: 1"), http::ClientError);
  EXPECT_THROW(http::HttpClient(server.url() + "/" + std::string(1 << 20, 'a')), http::ClientError);
  EXPECT_EQ(server.requests(), 0);
}

}  // namespace
}  // namespace kohaku::test
