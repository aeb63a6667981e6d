#include "host/state/state_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <initializer_list>
#include <string>
#include <vector>

#include "common/crash_safe_file.h"
#include "support/temp_dir.h"

namespace kohaku {
namespace {

using test_support::TempDir;

namespace fs = std::filesystem;

void append_raw(const fs::path& file, const std::string& bytes) {
  std::ofstream out(file, std::ios::binary | std::ios::app);
  out << bytes;
}

mode_t mode_of(const fs::path& p) {
  struct stat st {};
  EXPECT_EQ(::stat(p.c_str(), &st), 0) << p;
  return st.st_mode & 0777;
}

// A journal at `file` holding `payloads`, written and closed as a daemon would.
void write_journal(const fs::path& file, std::initializer_list<std::string> payloads) {
  std::vector<std::string> records;
  AppendJournal j(file, records);
  for (const auto& p : payloads) j.append(p);
}

// The message of the error that reopening the journal at `file` raises ("" and a failure when
// it opens).
std::string journal_refusal(const fs::path& file) {
  std::vector<std::string> records;
  try {
    AppendJournal j(file, records);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected " << file << " to be refused";
  return "";
}

TEST(AppendJournal, ReadsBackWhatWasAppended) {
  TempDir dir;
  auto file = dir.path() / "j.log";
  {
    std::vector<std::string> records;
    AppendJournal j(file, records);
    EXPECT_TRUE(records.empty());
    j.append(R"({"a":1})");
    j.append(R"({"b":"two"})", false);
    EXPECT_EQ(j.record_count(), 2u);
  }
  std::vector<std::string> records;
  AppendJournal j(file, records);
  EXPECT_EQ(records, (std::vector<std::string>{R"({"a":1})", R"({"b":"two"})"}));
  EXPECT_EQ(mode_of(file), 0600u);
  EXPECT_THROW(j.append("two\nlines"), std::invalid_argument);
}

TEST(AppendJournal, TornTailIsDroppedAndLaterAppendsStayReadable) {
  TempDir dir;
  auto file = dir.path() / "j.log";
  write_journal(file, {"first", "second"});
  // A crash cut the third record short: header and half the payload, no newline.
  std::string third = AppendJournal::encode("third-record");
  append_raw(file, third.substr(0, third.size() - 5));
  {
    std::vector<std::string> records;
    AppendJournal j(file, records);
    EXPECT_EQ(records, (std::vector<std::string>{"first", "second"}));
    j.append("after-crash");
  }
  std::vector<std::string> records;
  AppendJournal j(file, records);
  EXPECT_EQ(records, (std::vector<std::string>{"first", "second", "after-crash"}));
}

TEST(AppendJournal, ZeroFilledTailIsTornToo) {
  TempDir dir;
  auto file = dir.path() / "j.log";
  write_journal(file, {"only"});
  append_raw(file, std::string(300, '\0'));
  std::vector<std::string> records;
  AppendJournal j(file, records);
  EXPECT_EQ(records, (std::vector<std::string>{"only"}));
  EXPECT_EQ(fs::file_size(file), AppendJournal::encode("only").size());
}

TEST(AppendJournal, DamageBeforeIntactRecordsIsALoudErrorNamingFileAndOffset) {
  TempDir dir;
  auto file = dir.path() / "j.log";
  write_journal(file, {"first", "second", "third"});
  // Flip one payload byte of the second record.
  std::string data = read_whole_file(file);
  size_t second = AppendJournal::encode("first").size();
  data[second + 18] = 'X';
  write_file_atomically(file, data);
  const std::string msg = journal_refusal(file);
  EXPECT_NE(msg.find(file.string()), std::string::npos) << msg;
  EXPECT_NE(msg.find("offset " + std::to_string(second)), std::string::npos) << msg;
  EXPECT_EQ(read_whole_file(file), data) << "a corrupted journal is left alone for inspection";
}

TEST(WriteFileAtomically, ReplacesContentsWithMode0600) {
  TempDir dir;
  auto file = dir.path() / "snap.json";
  write_file_atomically(file, "one");
  write_file_atomically(file, "two");
  EXPECT_EQ(read_whole_file(file), "two");
  EXPECT_EQ(mode_of(file), 0600u);
  EXPECT_FALSE(fs::exists(dir.path() / "snap.json.tmp"));
}

TEST(StateStore, ReplaysJournalOnTopOfSnapshotWithoutDuplicates) {
  TempDir dir;
  {
    StateStore store(dir.path());
    EXPECT_TRUE(store.take_snapshot().is_null());
    store.append({{"n", 1}});
    store.append({{"n", 2}});
    store.compact({{"upto", 2}});
    store.append({{"n", 3}});
  }
  {
    StateStore store(dir.path());
    EXPECT_EQ(store.take_snapshot(), (nlohmann::json{{"upto", 2}}));
    auto records = store.take_records();
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(records[0]["n"], 3);
    EXPECT_EQ(records[0]["seq"], 3);
  }
  EXPECT_EQ(mode_of(dir.path() / StateStore::kSnapshotName), 0600u);
  EXPECT_EQ(mode_of(dir.path() / StateStore::kJournalName), 0600u);
}

TEST(StateStore, CompactionWaitsUntilTheJournalOutgrowsTheSnapshotTwice) {
  TempDir dir;
  const StateStore::Options options{.compact_bytes = 1, .compact_records = 10};
  const nlohmann::json large = {{"blob", std::string(20000, 'x')}};
  {
    StateStore store(dir.path(), options);
    for (int i = 0; i < 11; ++i) store.append({{"n", i}});
    EXPECT_TRUE(store.compaction_due());  // a small state: the record count decides
    // A large state: eleven records do not pay for rewriting it; records worth twice its size do.
    store.compact(large);
    for (int i = 0; i < 11; ++i) store.append({{"n", i}});
    EXPECT_FALSE(store.compaction_due());
    const uint64_t snapshot = std::filesystem::file_size(dir.path() / StateStore::kSnapshotName);
    while (std::filesystem::file_size(dir.path() / StateStore::kJournalName) <= 2 * snapshot)
      store.append({{"pad", std::string(1000, 'y')}});
    EXPECT_TRUE(store.compaction_due());
    store.compact(large);
  }
  // After a restart the snapshot's size comes from the file.
  StateStore store(dir.path(), options);
  for (int i = 0; i < 11; ++i) store.append({{"n", i}});
  EXPECT_FALSE(store.compaction_due());
}

TEST(StateStore, CrashBetweenSnapshotAndJournalTruncationAppliesNothingTwice) {
  TempDir dir;
  std::string old_journal;
  {
    StateStore store(dir.path());
    store.append({{"n", 1}});
    store.append({{"n", 2}});
    old_journal = read_whole_file(dir.path() / StateStore::kJournalName);
    store.compact({{"upto", 2}});
  }
  // As if the process died after renaming the snapshot, before emptying the journal.
  write_file_atomically(dir.path() / StateStore::kJournalName, old_journal);
  StateStore store(dir.path());
  EXPECT_EQ(store.take_snapshot(), (nlohmann::json{{"upto", 2}}));
  EXPECT_TRUE(store.take_records().empty());
  store.append({{"n", 3}});
  EXPECT_EQ(store.take_records().size(), 0u);
}

TEST(StateStore, SecondOwnerOfTheDirectoryIsRefused) {
  TempDir dir;
  StateStore first(dir.path());
  EXPECT_THROW(StateStore second(dir.path()), std::runtime_error);
}

TEST(StateStore, DamagedSnapshotIsALoudError) {
  TempDir dir;
  write_file_atomically(dir.path() / StateStore::kSnapshotName, "{\"format\":1,");
  try {
    StateStore store(dir.path());
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(StateStore::kSnapshotName), std::string::npos);
  }
}

// An expect-the-throw helper: the message must name `file` and contain `words`.
void expect_refusal(const fs::path& dir, const std::string& file, const std::string& words) {
  try {
    StateStore store(dir);
    FAIL() << "expected a refusal naming " << file;
  } catch (const std::runtime_error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(file), std::string::npos) << msg;
    EXPECT_NE(msg.find(words), std::string::npos) << msg;
  }
}

TEST(StateStore, SnapshotWithOneFlippedDigitIsRefused) {
  TempDir dir;
  {
    StateStore store(dir.path());
    store.append({{"n", 1}});
    store.compact({{"reservations", {{{"ip", "10.1.0.7"}, {"ttl", 300}}}}});
  }
  auto snap = dir.path() / StateStore::kSnapshotName;
  std::string data = read_whole_file(snap);
  size_t at = data.find("300");
  ASSERT_NE(at, std::string::npos) << data;
  data[at] = '9';  // still valid JSON, different state
  write_file_atomically(snap, data);
  expect_refusal(dir.path(), snap.string(), "fails its checksum");
}

TEST(StateStore, SnapshotWithoutChecksumFromAnOlderVersionLoads) {
  TempDir dir;
  write_file_atomically(dir.path() / StateStore::kSnapshotName,
                        R"({"format":1,"seq":4,"state":{"upto":4}})");
  StateStore store(dir.path());
  EXPECT_EQ(store.take_snapshot(), (nlohmann::json{{"upto", 4}}));
}

TEST(StateStore, RemovedSnapshotWithANonEmptyJournalIsRefused) {
  TempDir dir;
  {
    StateStore store(dir.path());
    store.append({{"n", 1}});
    store.compact({{"upto", 1}});
    store.append({{"n", 2}});
  }
  fs::remove(dir.path() / StateStore::kSnapshotName);
  expect_refusal(dir.path(), (dir.path() / StateStore::kJournalName).string(),
                 "there is no snapshot");
}

TEST(StateStore, OlderSnapshotThanTheJournalContinuesIsRefused) {
  TempDir dir;
  std::string old_snapshot;
  {
    StateStore store(dir.path());
    store.append({{"n", 1}});
    store.compact({{"upto", 1}});
    old_snapshot = read_whole_file(dir.path() / StateStore::kSnapshotName);
    store.append({{"n", 2}});
    store.compact({{"upto", 2}});
    store.append({{"n", 3}});
  }
  // A backup of the older snapshot put back: the journal continues seq 2, not 1.
  write_file_atomically(dir.path() / StateStore::kSnapshotName, old_snapshot);
  expect_refusal(dir.path(), StateStore::kSnapshotName, "disagree");
}

TEST(AppendJournal, WholeLastRecordWithABadChecksumIsRefusedNotDropped) {
  TempDir dir;
  auto file = dir.path() / "j.log";
  write_journal(file, {"first", "use 10.1.0.7"});
  std::string data = read_whole_file(file);
  data[data.size() - 2] = '8';  // one flipped byte in the last, acknowledged record
  write_file_atomically(file, data);
  const std::string msg = journal_refusal(file);
  EXPECT_NE(msg.find("fails its checksum"), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncate -s " + std::to_string(AppendJournal::encode("first").size())),
            std::string::npos)
      << msg;
  EXPECT_EQ(read_whole_file(file), data) << "left alone for inspection";
}

}  // namespace
}  // namespace kohaku
