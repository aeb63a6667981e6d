#include "table.h"

#include <algorithm>

namespace kohakuctl {

void Table::add_row(std::vector<std::string> cells) {
  cells.resize(headers_.size());
  rows_.push_back(std::move(cells));
}

void Table::print(std::ostream& out) const {
  std::vector<size_t> widths;
  for (const auto& h : headers_) widths.push_back(h.size());
  for (const auto& row : rows_)
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  auto line = [&](const std::vector<std::string>& cells) {
    std::string text;
    for (size_t i = 0; i < cells.size(); ++i) {
      text += cells[i];
      // No padding after the last column: lines carry no trailing blanks.
      if (i + 1 < cells.size()) text += std::string(widths[i] - cells[i].size() + 2, ' ');
    }
    out << text << "\n";
  };
  line(headers_);
  std::vector<std::string> rule;
  for (size_t w : widths) rule.emplace_back(w, '-');
  line(rule);
  for (const auto& row : rows_) line(row);
}

void print_key_values(std::ostream& out, const KeyValues& items) {
  size_t width = 0;
  for (const auto& [k, v] : items) width = std::max(width, k.size());
  for (const auto& [k, v] : items)
    out << k << ":" << std::string(width - k.size() + 2, ' ') << v << "\n";
}

std::string cell(const nlohmann::json& value) {
  if (value.is_null()) return "-";
  if (value.is_string()) return value.get<std::string>();
  if (value.is_boolean()) return value.get<bool>() ? "yes" : "no";
  return value.dump();
}

std::string field(const nlohmann::json& object, const std::string& key) {
  if (!object.is_object() || !object.contains(key)) return "-";
  return cell(object.at(key));
}

void print_object_list(std::ostream& out, const nlohmann::json& rows,
                       const std::vector<std::string>& first) {
  std::vector<std::string> keys;
  for (const auto& k : first)
    for (const auto& row : rows)
      if (row.is_object() && row.contains(k)) {
        keys.push_back(k);
        break;
      }
  for (const auto& row : rows) {
    if (!row.is_object()) continue;
    for (const auto& [k, v] : row.items())
      if (std::find(keys.begin(), keys.end(), k) == keys.end()) keys.push_back(k);
  }
  Table table(keys);
  for (const auto& row : rows) {
    std::vector<std::string> cells;
    for (const auto& k : keys) cells.push_back(field(row, k));
    table.add_row(std::move(cells));
  }
  table.print(out);
}

}  // namespace kohakuctl
