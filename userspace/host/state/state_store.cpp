#include "state_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

#include "common/json_parse.h"

namespace kohaku {

StateStore::StateStore(const std::filesystem::path& dir, Options options)
    : dir_(dir), options_(options) {
  std::error_code ec;
  bool created = std::filesystem::create_directories(dir_, ec);
  if (ec)
    throw std::runtime_error("cannot create state directory " + dir_.string() + ": " +
                             ec.message());
  // A new directory's own entry must be durable too, or a power loss can lose the whole tree.
  if (created) fsync_directory(dir_.parent_path().empty() ? "." : dir_.parent_path());
  ::chmod(dir_.c_str(), 0700);

  auto lock_path = dir_ / "lock";
  lock_fd_ = UniqueFd(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!lock_fd_.valid())
    throw std::runtime_error("cannot open " + lock_path.string() + ": " + std::strerror(errno));
  if (::flock(lock_fd_.get(), LOCK_EX | LOCK_NB) != 0)
    throw std::runtime_error("state directory " + dir_.string() +
                             " is in use by another process (" + lock_path.string() +
                             " is locked)");

  auto snapshot_path = dir_ / kSnapshotName;
  uint64_t snapshot_seq = 0;
  bool have_snapshot = false;
  if (std::filesystem::exists(snapshot_path)) {
    // The snapshot is only ever replaced by rename, so a parse error is real damage.
    nlohmann::json doc;
    try {
      const std::string text = read_whole_file(snapshot_path);
      snapshot_bytes_ = text.size();
      doc = parse_json(text, kFileJsonLimits);
    } catch (const JsonParseError& e) {
      throw std::runtime_error("snapshot " + snapshot_path.string() + " is corrupted: " + e.what());
    }
    if (!doc.is_object() || doc.value("format", 0) != 1 || !doc.contains("seq") ||
        !doc["seq"].is_number_unsigned() || !doc.contains("state"))
      throw std::runtime_error("snapshot " + snapshot_path.string() +
                               " has an unknown format (expected format 1 with seq and state)");
    snapshot_seq = doc["seq"].get<uint64_t>();
    // Snapshots written before the checksum existed have none; every compaction adds it.
    if (doc.contains("crc32")) {
      if (!doc["crc32"].is_number_unsigned() ||
          doc["crc32"].get<uint64_t>() != crc32_of(doc["state"].dump()))
        throw std::runtime_error(
            "snapshot " + snapshot_path.string() +
            " fails its checksum: it was changed after kohaku-hostd wrote it (a damaged disk or "
            "an edit); refusing to load state that may have lost reservations: restore it from "
            "a backup, or if the edit was deliberate, remove its \"crc32\" field to accept it");
    }
    snapshot_ = std::move(doc["state"]);
    have_snapshot = true;
  }
  seq_ = snapshot_seq;

  std::vector<std::string> lines;
  journal_ = std::make_unique<AppendJournal>(dir_ / kJournalName, lines);
  group_ = std::make_unique<GroupCommit>([journal = journal_.get()] { journal->sync(); });
  uint64_t offset = 0;
  for (const auto& line : lines) {
    nlohmann::json record;
    try {
      record = parse_json(line, kFileJsonLimits);
    } catch (const JsonParseError& e) {
      // The checksum matched, so this was written like this: a bug, not a crash.
      throw std::runtime_error("journal " + journal_->path().string() + " record at byte offset " +
                               std::to_string(offset) + " is not JSON: " + e.what());
    }
    if (!record.is_object() || !record.contains("seq") || !record["seq"].is_number_unsigned())
      throw std::runtime_error("journal " + journal_->path().string() + " record at byte offset " +
                               std::to_string(offset) + " has no seq");
    offset += AppendJournal::encode(line).size();
    uint64_t seq = record["seq"].get<uint64_t>();
    if (seq <= snapshot_seq) continue;  // already in the snapshot (crash during compaction)
    // Every record follows the one before it (or the snapshot): a gap means the snapshot that
    // held the records before it is missing or older than the journal.
    if (seq != seq_ + 1) {
      std::string what = have_snapshot ? "snapshot " + snapshot_path.string() + " ends at seq " +
                                             std::to_string(seq_)
                                       : "there is no snapshot " + snapshot_path.string();
      throw std::runtime_error(
          "journal " + journal_->path().string() + " record at byte offset " +
          std::to_string(offset - AppendJournal::encode(line).size()) + " has seq " +
          std::to_string(seq) + ", but " + what +
          ": snapshot and journal disagree (a removed or restored-from-older snapshot); "
          "refusing to start from partial state: restore the matching " +
          std::string(kSnapshotName) + ", or remove both files to start empty");
    }
    seq_ = seq;
    records_.push_back(std::move(record));
  }
}

std::string StateStore::next_record(nlohmann::json& record) const {
  if (auto error = group_->failed())
    throw std::runtime_error("the journal could not be flushed earlier (" + *error +
                             "); refusing changes until kohaku-hostd restarts");
  record["seq"] = seq_ + 1;
  return record.dump();
}

void StateStore::append(nlohmann::json record, bool durable) {
  journal_->append(next_record(record), durable);
  ++seq_;
  if (durable) group_->covered(seq_);
}

uint64_t StateStore::write(nlohmann::json record) {
  journal_->write(next_record(record));
  ++seq_;
  group_->written(seq_);
  return seq_;
}

void StateStore::wait_durable(uint64_t seq) {
  group_->wait(seq);
}

bool StateStore::compaction_due() const {
  // Never before the journal has grown to twice the snapshot: writing the snapshot costs its
  // size, so each journal byte pays for at most half a snapshot byte, however large the state
  // (Redis's AOF rewrite uses the same growth rule). A fixed threshold made a hub holding
  // 10,000 reservations rewrite its whole state every 20,000 records, under the service lock.
  if (journal_->size_bytes() <= 2 * snapshot_bytes_) return false;
  return journal_->size_bytes() > options_.compact_bytes ||
         journal_->record_count() > options_.compact_records;
}

void StateStore::compact(nlohmann::json state) {
  const uint32_t crc = crc32_of(state.dump());
  nlohmann::json doc = {{"format", 1}, {"seq", seq_}, {"crc32", crc}, {"state", std::move(state)}};
  const std::string text = doc.dump();
  write_file_atomically(dir_ / kSnapshotName, text);
  snapshot_bytes_ = text.size();
  // A crash here leaves journal records with seq <= the snapshot's: load() skips them.
  journal_->truncate();
  group_->covered(seq_);
}

}  // namespace kohaku
