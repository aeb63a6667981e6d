#include "host/state_store.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>

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
  {
    std::vector<std::string> records;
    AppendJournal j(file, records);
    j.append("first");
    j.append("second");
  }
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
  {
    std::vector<std::string> records;
    AppendJournal j(file, records);
    j.append("only");
  }
  append_raw(file, std::string(300, '\0'));
  std::vector<std::string> records;
  AppendJournal j(file, records);
  EXPECT_EQ(records, (std::vector<std::string>{"only"}));
  EXPECT_EQ(fs::file_size(file), AppendJournal::encode("only").size());
}

TEST(AppendJournal, DamageBeforeIntactRecordsIsALoudErrorNamingFileAndOffset) {
  TempDir dir;
  auto file = dir.path() / "j.log";
  {
    std::vector<std::string> records;
    AppendJournal j(file, records);
    j.append("first");
    j.append("second");
    j.append("third");
  }
  // Flip one payload byte of the second record.
  std::string data = read_whole_file(file);
  size_t second = AppendJournal::encode("first").size();
  data[second + 18] = 'X';
  write_file_atomically(file, data);
  std::vector<std::string> records;
  try {
    AppendJournal j(file, records);
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(file.string()), std::string::npos) << msg;
    EXPECT_NE(msg.find("offset " + std::to_string(second)), std::string::npos) << msg;
  }
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

}  // namespace
}  // namespace kohaku
