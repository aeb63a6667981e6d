#pragma once
// Where kohakuctl connects and with which token when the command line does not say: one
// definition for every command family.
#include <string>

namespace kohakuctl {

// --host default: $KOHAKU_HOST, else http://127.0.0.1:8000.
std::string default_host();

// --token default: $KOHAKU_TOKEN; else, when `host` is on this machine (a loopback address or
// localhost), the token kohaku-hostd generated in its STATE_DIR ($KOHAKU_TOKEN_FILE, default
// /var/lib/kohaku/api_token) if this user can read it, as kubectl reads admin.conf on a control
// plane node. Never read for another host, so the local secret is not sent elsewhere. Empty
// when there is none.
std::string default_token(const std::string& host);

}  // namespace kohakuctl
