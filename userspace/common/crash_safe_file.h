#pragma once
// Crash-safe files: whole-file replacement (temp + fsync + rename + fsync dir) and an append-only
// journal of checksummed records whose torn tail (a write a crash cut short) is detected and
// dropped, while damage anywhere else is a loud error.
//
// Journal record format, one per line, readable with `cat`:
//   "<payload length, 8 hex digits> <CRC-32 of payload, 8 hex digits> <payload>\n"
// The payload must not contain '\n' (compact JSON never does).
#include <sys/types.h>

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/unique_fd.h"

namespace kohaku {

// Reads a whole file; throws std::runtime_error naming the path on failure.
std::string read_whole_file(const std::filesystem::path& path);

// Replaces path with contents so that after a crash the file holds either the old or the new
// contents, never a mix: write path.tmp, fsync, rename over path, fsync the directory.
void write_file_atomically(const std::filesystem::path& path, std::string_view contents,
                           mode_t mode = 0600);

// fsyncs a directory so a rename or create inside it is durable.
void fsync_directory(const std::filesystem::path& dir);

class AppendJournal {
 public:
  // Opens (creating with `mode`) the journal and reads every intact record into `records`.
  // A damaged record with no intact record after it is a torn tail: it is cut off (the file is
  // truncated there) with a warning. A damaged record followed by intact ones throws
  // std::runtime_error naming the file and byte offset: that is corruption, not a crash.
  AppendJournal(const std::filesystem::path& path, std::vector<std::string>& records,
                mode_t mode = 0600);

  // Appends one record. With durable, fdatasync()s before returning so the record survives a
  // power loss; without, it still survives the process being killed (it is in the page cache).
  void append(std::string_view payload, bool durable = true);
  // The two halves of append(durable): write() puts the record in the page cache (whole, or not
  // at all: a failed write is cut off again), sync() fdatasync()s everything written so far.
  // They let a group of writers share one sync (common/group_commit.h). sync() may run on
  // another thread while write() runs.
  void write(std::string_view payload);
  void sync();
  // Empties the journal (after its contents went into a snapshot) and makes that durable.
  void truncate();

  const std::filesystem::path& path() const { return path_; }
  uint64_t size_bytes() const { return size_; }
  uint64_t record_count() const { return records_; }

  // Record framing, exposed for tests that build damaged journals by hand.
  static std::string encode(std::string_view payload);

 private:
  std::filesystem::path path_;
  UniqueFd fd_;
  uint64_t size_ = 0;
  uint64_t records_ = 0;
};

// CRC-32 (IEEE) of data: the journal's record checksum, also the snapshot's.
uint32_t crc32_of(std::string_view data);

}  // namespace kohaku
