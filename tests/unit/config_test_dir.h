#pragma once
// A fresh directory per test, removed afterwards, so config tests parse real files.
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

namespace kohaku::test_support {

class ConfigTestDir {
 public:
  ConfigTestDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "kohaku-config-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~ConfigTestDir() { std::filesystem::remove_all(path_); }
  ConfigTestDir(const ConfigTestDir&) = delete;
  ConfigTestDir& operator=(const ConfigTestDir&) = delete;

  // Writes `text` to `name` inside the directory and returns its path.
  std::string write(const std::string& name, const std::string& text) const {
    auto p = path_ / name;
    std::ofstream out(p, std::ios::binary);
    out << text;
    if (!out.flush()) throw std::runtime_error("cannot write " + p.string());
    return p.string();
  }

 private:
  std::filesystem::path path_;
};

}  // namespace kohaku::test_support
