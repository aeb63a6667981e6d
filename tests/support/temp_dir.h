#pragma once
// A fresh directory under the system temp dir for one test, removed with everything in it when
// the object goes. Tests that persist state (state stores, daemons' STATE_DIR, config files)
// each get their own, so parallel ctest runs never share files.
#include <stdlib.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <system_error>

namespace kohaku::test_support {

class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "kohaku-test") {
    std::string tmpl = (std::filesystem::temp_directory_path() / (prefix + "-XXXXXX")).string();
    if (::mkdtemp(tmpl.data()) == nullptr)
      throw std::system_error(errno, std::generic_category(), "mkdtemp " + tmpl);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace kohaku::test_support
