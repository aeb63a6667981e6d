#pragma once
// What http_client.cpp and http_server.cpp share of Boost.Beast: the short names both use for
// its namespaces, and a message's header fields as the lower-case-keyed map of Request and
// ClientResponse. Internal to those two files (their headers stay free of Boost).
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <cctype>
#include <map>
#include <string>

namespace kohaku::http {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

// Field names lower-cased: HTTP names are case-insensitive, and both sides look them up so.
template <class Fields>
std::map<std::string, std::string> lower_cased_fields(const Fields& fields) {
  std::map<std::string, std::string> out;
  for (const auto& field : fields) {
    std::string name(field.name_string());
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    out[name] = std::string(field.value());
  }
  return out;
}

}  // namespace kohaku::http
