#pragma once
// Plain-text output for kohakuctl: aligned tables and key/value blocks, in the spirit of
// KohakuRiver's rich tables but safe to pipe into grep/awk (no box drawing, no colour).
#include <nlohmann/json.hpp>

#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace kohakuctl {

class Table {
 public:
  explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}
  void add_row(std::vector<std::string> cells);
  bool empty() const { return rows_.empty(); }
  // Columns padded to their widest cell, two spaces apart, a dashed rule under the header.
  void print(std::ostream& out) const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

using KeyValues = std::vector<std::pair<std::string, std::string>>;
// "Key:   value" lines with the values aligned.
void print_key_values(std::ostream& out, const KeyValues& items);

// A JSON value as a table cell: strings bare, null "-", booleans yes/no, containers compact.
std::string cell(const nlohmann::json& value);
// cell() of object[key], "-" when absent.
std::string field(const nlohmann::json& object, const std::string& key);

// A table whose columns are the keys of the objects in `rows`: `first` in that order (those
// present), then the others alphabetically.
void print_object_list(std::ostream& out, const nlohmann::json& rows,
                       const std::vector<std::string>& first = {});

}  // namespace kohakuctl
