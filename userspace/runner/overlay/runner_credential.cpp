#include "runner/overlay/runner_credential.h"

#include <system_error>

#include "common/crash_safe_file.h"

namespace kohaku::runner {

bool RunnerCredentialFile::well_formed(const std::string& text) {
  if (text.size() != 64) return false;
  for (char c : text)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::optional<std::string> RunnerCredentialFile::load(std::string* warning) const {
  std::error_code ec;
  if (!std::filesystem::exists(path_, ec)) return std::nullopt;
  std::string text;
  try {
    text = read_whole_file(path_);
  } catch (const std::exception& e) {
    if (warning) *warning = e.what();
    return std::nullopt;
  }
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (!well_formed(text)) {
    if (warning) *warning = path_.string() + " does not hold a runner credential (64 hex digits)";
    return std::nullopt;
  }
  return text;
}

void RunnerCredentialFile::save(const std::string& credential) const {
  write_file_atomically(path_, credential + "\n", 0600);
}

}  // namespace kohaku::runner
