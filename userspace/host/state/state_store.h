#pragma once
// Durable home of the host's control-plane state under STATE_DIR:
//   state.json    snapshot: {"format":1,"seq":N,"state":{...},"crc32":C}, replaced atomically;
//                 C is the CRC-32 of state's JSON text, checked on load
//   journal.log   mutations since the snapshot, one checksummed JSON record per line, each with
//                 a "seq" greater than the snapshot's (see common/crash_safe_file.h)
//   lock          flock()ed while a daemon owns the directory
// Load = snapshot + the journal records whose seq is newer, so a crash between writing a new
// snapshot and emptying the journal never applies a mutation twice. Files are mode 0600: they
// hold reservation tokens.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "common/crash_safe_file.h"
#include "common/group_commit.h"

namespace kohaku {

class StateStore {
 public:
  struct Options {
    // Compaction is due when the journal is larger than this or holds more records, and at
    // least twice as large as the snapshot (so its cost per record stays bounded).
    uint64_t compact_bytes = 4u << 20;
    uint64_t compact_records = 20000;
  };

  // Creates dir (0700) if needed, takes the lock (throws if another process holds it), reads
  // the snapshot and the journal. Throws std::runtime_error naming the file on corruption.
  explicit StateStore(const std::filesystem::path& dir) : StateStore(dir, Options{}) {}
  StateStore(const std::filesystem::path& dir, Options options);

  // What was on disk at construction: the snapshot's "state" (null when there is none) and
  // the journal records to replay on top of it, oldest first. Each call hands them over once.
  nlohmann::json take_snapshot() { return std::move(snapshot_); }
  std::vector<nlohmann::json> take_records() { return std::move(records_); }

  // Appends a mutation (an object; "seq" is added). durable: see AppendJournal::append.
  void append(nlohmann::json record, bool durable = true);
  // Group commit (common/group_commit.h): write() appends a mutation without waiting for the
  // disk and returns its seq; when_durable(seq, done) calls done once a journal flush shared
  // with concurrent writers covers it (or with the flush's error), wait_durable(seq), called
  // with the caller's own lock released, returns then. Once a flush failed, wait_durable() and
  // every later write() or append() throw std::runtime_error.
  uint64_t write(nlohmann::json record);
  void when_durable(uint64_t seq, GroupCommit::Done done) {
    group_->when_durable(seq, std::move(done));
  }
  void wait_durable(uint64_t seq);
  uint64_t flushes() const { return group_->flushes(); }
  bool compaction_due() const;
  // Writes state as the new snapshot and empties the journal. The snapshot is fsynced, so it
  // also makes every mutation written before it durable.
  void compact(nlohmann::json state);

  const std::filesystem::path& dir() const { return dir_; }
  static constexpr const char* kSnapshotName = "state.json";
  static constexpr const char* kJournalName = "journal.log";

 private:
  std::filesystem::path dir_;
  Options options_;
  UniqueFd lock_fd_;
  uint64_t seq_ = 0;
  nlohmann::json snapshot_;
  uint64_t snapshot_bytes_ = 0;  // size of state.json as last read or written
  std::vector<nlohmann::json> records_;
  std::unique_ptr<AppendJournal> journal_;
  std::unique_ptr<GroupCommit> group_;

  // The journal line for record as the next seq; refuses once a flush failed.
  std::string next_record(nlohmann::json& record) const;
};

}  // namespace kohaku
