#pragma once
// The runner's credential: a secret the host issues at the first registration and wants again
// before it lets this hostname move to another address (docs/security.md). Kept in
// STATE_DIR/runner_credential (mode 0600) so it survives restarts of kohaku-runnerd.
#include <filesystem>
#include <optional>
#include <string>

namespace kohaku::runner {

class RunnerCredentialFile {
 public:
  explicit RunnerCredentialFile(std::filesystem::path path) : path_(std::move(path)) {}

  // The stored credential; nullopt when there is none. A file that does not hold one (not 64
  // hex digits) is reported in `warning` and ignored: the host then issues a new one once the
  // runner is released there.
  std::optional<std::string> load(std::string* warning) const;
  // Replaces the stored credential atomically; throws std::runtime_error naming the file.
  void save(const std::string& credential) const;
  // Whether text looks like a credential the host issues (64 lower-case hex digits).
  static bool well_formed(const std::string& text);

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace kohaku::runner
