#include "crash_safe_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/crc.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <stdexcept>

#include "log.h"

namespace kohaku {
namespace {

constexpr size_t kHeaderSize = 18;  // 8 hex + ' ' + 8 hex + ' '

[[noreturn]] void fail(const std::string& what, const std::filesystem::path& path) {
  throw std::runtime_error(what + " " + path.string() + ": " + std::strerror(errno));
}

std::optional<uint32_t> parse_hex8(std::string_view text) {
  if (text.size() != 8) return std::nullopt;
  uint32_t v = 0;
  for (char c : text) {
    uint32_t d;
    if (c >= '0' && c <= '9')
      d = static_cast<uint32_t>(c - '0');
    else if (c >= 'a' && c <= 'f')
      d = static_cast<uint32_t>(c - 'a' + 10);
    else
      return std::nullopt;
    v = (v << 4) | d;
  }
  return v;
}

// A record whose header, length and terminating newline are all in place but whose checksum does
// not match: damaged after it was written whole. One write() per record means a crash leaves a
// record whole or cut short, never this.
bool complete_but_damaged(std::string_view data, size_t offset) {
  if (data.size() - offset < kHeaderSize) return false;
  auto header = data.substr(offset, kHeaderSize);
  if (header[8] != ' ' || header[17] != ' ') return false;
  auto len = parse_hex8(header.substr(0, 8));
  if (!len || !parse_hex8(header.substr(9, 8))) return false;
  size_t start = offset + kHeaderSize;
  return *len < data.size() - start && data[start + *len] == '\n';
}

// Decodes the record starting at offset; on success sets payload and returns the offset of the
// next record.
std::optional<size_t> decode_at(std::string_view data, size_t offset, std::string_view& payload) {
  if (data.size() - offset < kHeaderSize) return std::nullopt;
  auto header = data.substr(offset, kHeaderSize);
  if (header[8] != ' ' || header[17] != ' ') return std::nullopt;
  auto len = parse_hex8(header.substr(0, 8));
  auto crc = parse_hex8(header.substr(9, 8));
  if (!len || !crc) return std::nullopt;
  size_t start = offset + kHeaderSize;
  if (*len > data.size() - start || data.size() - start - *len < 1) return std::nullopt;
  if (data[start + *len] != '\n') return std::nullopt;
  auto body = data.substr(start, *len);
  if (crc32_of(body) != *crc) return std::nullopt;
  payload = body;
  return start + *len + 1;
}

void write_all(int fd, std::string_view data, const std::filesystem::path& path) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("cannot write", path);
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace

std::string read_whole_file(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) fail("cannot open", path);
  std::string out;
  char buf[65536];
  while (true) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("cannot read", path);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

void fsync_directory(const std::filesystem::path& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) fail("cannot open directory", dir);
  if (::fsync(fd.get()) != 0) fail("cannot fsync directory", dir);
}

void write_file_atomically(const std::filesystem::path& path, std::string_view contents,
                           mode_t mode) {
  auto tmp = path;
  tmp += ".tmp";
  {
    UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
    if (!fd.valid()) fail("cannot create", tmp);
    // O_CREAT's mode is filtered by umask and ignored for an existing file: set it explicitly.
    if (::fchmod(fd.get(), mode) != 0) fail("cannot chmod", tmp);
    write_all(fd.get(), contents, tmp);
    if (::fsync(fd.get()) != 0) fail("cannot fsync", tmp);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) fail("cannot rename onto", path);
  auto dir = path.parent_path();
  fsync_directory(dir.empty() ? std::filesystem::path(".") : dir);
}

std::string AppendJournal::encode(std::string_view payload) {
  if (payload.find('\n') != std::string_view::npos)
    throw std::invalid_argument("journal payload must not contain a newline");
  if (payload.size() > 0xffffffffu) throw std::invalid_argument("journal payload too large");
  char header[kHeaderSize + 1];
  std::snprintf(header, sizeof header, "%08x %08x ", static_cast<unsigned>(payload.size()),
                static_cast<unsigned>(crc32_of(payload)));
  std::string out;
  out.reserve(kHeaderSize + payload.size() + 1);
  out.append(header, kHeaderSize).append(payload).push_back('\n');
  return out;
}

AppendJournal::AppendJournal(const std::filesystem::path& path, std::vector<std::string>& records,
                             mode_t mode)
    : path_(path) {
  bool existed = std::filesystem::exists(path);
  fd_ = UniqueFd(::open(path.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, mode));
  if (!fd_.valid()) fail("cannot open journal", path);
  if (::fchmod(fd_.get(), mode) != 0) fail("cannot chmod", path);
  if (!existed) fsync_directory(path.parent_path().empty() ? "." : path.parent_path());

  std::string data = read_whole_file(path);
  std::string_view view(data);
  size_t offset = 0;
  while (offset < view.size()) {
    std::string_view payload;
    auto next = decode_at(view, offset, payload);
    if (next) {
      records.emplace_back(payload);
      offset = *next;
      continue;
    }
    // Damaged record. It is a torn tail only if no intact record starts after it.
    for (size_t pos = view.find('\n', offset); pos != std::string_view::npos;
         pos = view.find('\n', pos + 1)) {
      std::string_view ignored;
      if (pos + 1 < view.size() && decode_at(view, pos + 1, ignored))
        throw std::runtime_error("journal " + path.string() + " is corrupted at byte offset " +
                                 std::to_string(offset) +
                                 " (a damaged record is followed by intact ones; refusing to "
                                 "guess: restore or remove the file)");
    }
    if (complete_but_damaged(view, offset))
      throw std::runtime_error(
          "journal " + path.string() + ": its last record (byte offset " + std::to_string(offset) +
          ") is whole but fails its checksum: damaged after it was written, not an interrupted "
          "write, so it may be an acknowledged change; refusing to drop it: restore the file, or "
          "accept losing that record with: truncate -s " +
          std::to_string(offset) + " " + path.string());
    log::warn("journal", "dropping torn tail of " + path.string() + ": " +
                             std::to_string(view.size() - offset) + " bytes at offset " +
                             std::to_string(offset) + " (an interrupted write)");
    if (::ftruncate(fd_.get(), static_cast<off_t>(offset)) != 0 || ::fsync(fd_.get()) != 0)
      fail("cannot truncate torn tail of", path);
    break;
  }
  size_ = offset;
  records_ = records.size();
}

void AppendJournal::append(std::string_view payload, bool durable) {
  const uint64_t size_before = size_, records_before = records_;
  write(payload);
  if (!durable) return;
  try {
    sync();
  } catch (...) {
    // The caller undoes the change it recorded, so the record must go too.
    (void)::ftruncate(fd_.get(), static_cast<off_t>(size_before));
    size_ = size_before;
    records_ = records_before;
    throw;
  }
}

void AppendJournal::write(std::string_view payload) {
  std::string record = encode(payload);
  // One write() per record on an O_APPEND fd: a kill -9 leaves it whole or not written at all;
  // only a power loss can tear it, which load() then cuts off.
  try {
    write_all(fd_.get(), record, path_);
  } catch (...) {
    // Cut off a partly written record (disk full...) so later appends do not land behind
    // garbage, which the next load would rightly call corruption.
    (void)::ftruncate(fd_.get(), static_cast<off_t>(size_));
    throw;
  }
  size_ += record.size();
  ++records_;
}

void AppendJournal::sync() {
  if (::fdatasync(fd_.get()) != 0) fail("cannot fdatasync", path_);
}

void AppendJournal::truncate() {
  if (::ftruncate(fd_.get(), 0) != 0) fail("cannot truncate", path_);
  if (::fsync(fd_.get()) != 0) fail("cannot fsync", path_);
  size_ = 0;
  records_ = 0;
}

uint32_t crc32_of(std::string_view data) {
  boost::crc_32_type crc;
  crc.process_bytes(data.data(), data.size());
  return crc.checksum();
}

}  // namespace kohaku
