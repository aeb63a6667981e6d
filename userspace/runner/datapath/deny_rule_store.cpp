#include "runner/datapath/deny_rule_store.h"

#include <nlohmann/json.hpp>

#include <stdexcept>
#include <system_error>

#include "common/crash_safe_file.h"
#include "common/domain_error.h"
#include "common/json_parse.h"
#include "runner/datapath/deny_rule_json.h"

namespace kohaku::runner {

using nlohmann::json;

std::optional<std::vector<DenyRule>> DenyRuleStore::load() const {
  std::error_code ec;
  if (!std::filesystem::exists(file_, ec)) return std::nullopt;
  const json doc = try_parse_json(read_whole_file(file_), kFileJsonLimits).value_or(json());
  if (!doc.is_object() || !doc.contains("rules") || !doc["rules"].is_array())
    throw std::runtime_error(file_.string() + ": not a deny rules file ({\"rules\": [...]})");
  std::vector<DenyRule> rules;
  for (size_t i = 0; i < doc["rules"].size(); ++i) {
    try {
      rules.push_back(deny_rule_from_json(doc["rules"][i]));
    } catch (const DomainError& e) {
      throw std::runtime_error(file_.string() + ": rule " + std::to_string(i + 1) + ": " +
                               e.what());
    }
  }
  return rules;
}

void DenyRuleStore::save(const std::vector<DenyRule>& rules) const {
  json list = json::array();
  for (const auto& r : rules) list.push_back(deny_rule_to_json(r));
  std::error_code ec;
  std::filesystem::create_directories(file_.parent_path(), ec);
  if (ec)
    throw std::runtime_error("creating " + file_.parent_path().string() + ": " + ec.message());
  write_file_atomically(file_, json{{"rules", list}}.dump(2) + "\n");
}

}  // namespace kohaku::runner
