#include "host/api/api_token.h"

#include <stdexcept>
#include <system_error>

#include "common/crash_safe_file.h"
#include "common/secret.h"

namespace kohaku {
namespace {

constexpr size_t kMinLength = 32;

bool well_formed(const std::string& text) {
  if (text.size() < kMinLength) return false;
  for (unsigned char c : text)
    if (c <= 0x20 || c >= 0x7f) return false;
  return true;
}

}  // namespace

ApiToken load_or_create_api_token(const std::filesystem::path& state_dir) {
  ApiToken t;
  t.file = state_dir / kApiTokenFileName;
  std::error_code ec;
  if (!std::filesystem::exists(t.file, ec)) {
    if (ec)
      throw std::runtime_error("cannot check for the API token " + t.file.string() + ": " +
                               ec.message());
    t.token = random_hex(32);
    write_file_atomically(t.file, t.token + "\n", 0600);
    t.created = true;
    return t;
  }
  std::string text = read_whole_file(t.file);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  if (!well_formed(text))
    throw std::runtime_error(
        t.file.string() + " does not hold an API token (printable ASCII without spaces, at least " +
        std::to_string(kMinLength) +
        " characters). Restore it from a backup, or delete it to have a new one generated and "
        "give the new one to every runner (OVERLAY_API_TOKEN)");
  t.token = std::move(text);
  return t;
}

}  // namespace kohaku
