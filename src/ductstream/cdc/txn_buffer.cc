#include "ductstream/cdc/txn_buffer.h"

#include <unistd.h>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "ductstream/base/logging.h"
#include "ductstream/base/status.h"

namespace ductstream::cdc {
namespace {

// Spill record header: lsn (8), xid (4), length (4), host byte order (the file never outlives
// the process).
struct SpillHeader {
  uint64_t lsn;
  uint32_t xid;
  uint32_t length;
};

// Stdio buffer of a spill file: a streamed transaction spills and replays gigabytes in records
// of a few hundred bytes, which the default 4 KiB buffer turns into a system call per page.
constexpr size_t kSpillIoBuffer = 256 << 10;

absl::Status IoError(absl::string_view what) {
  return absl::InternalError(
      absl::StrCat("streamed-transaction spill file: ", what, ": ", std::strerror(errno)));
}

}  // namespace

bool IsStreamedDataMessage(char type) {
  switch (type) {
    case 'R':
    case 'Y':
    case 'I':
    case 'U':
    case 'D':
    case 'T':
    case 'M':
      return true;
    default:
      return false;
  }
}

absl::StatusOr<Xid> StreamedMessageXid(absl::string_view message) {
  if (message.size() < 5 || !IsStreamedDataMessage(message[0])) {
    return absl::InvalidArgumentError("not a streamed pgoutput data message");
  }
  const auto* p = reinterpret_cast<const unsigned char*>(message.data()) + 1;
  return Xid((uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3]);
}

TxnBuffer::TxnBuffer(int64_t memory_limit, std::string spill_dir)
    : memory_limit_(memory_limit), spill_dir_(std::move(spill_dir)) {
  if (spill_dir_.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    spill_dir_ = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  }
}

TxnBuffer::~TxnBuffer() { Clear(); }

// What one buffered message really holds: the entry in the vector, the message's heap block
// (with the allocator's header) and its bytes.
int64_t TxnBuffer::EntryBytes(const Entry& e) {
  return static_cast<int64_t>(sizeof(Entry) + 16 + e.message.size());
}

absl::Status TxnBuffer::Append(Xid top, Lsn lsn, absl::string_view message) {
  DS_ASSIGN_OR_RETURN(Xid xid, StreamedMessageXid(message));
  auto& slot = txns_[top.value()];
  if (!slot) slot = std::make_unique<Txn>();
  Txn& txn = *slot;
  txn.entries.push_back(Entry{lsn.value(), xid.value(), std::string(message)});
  const int64_t size = EntryBytes(txn.entries.back());
  txn.memory_bytes += size;
  memory_bytes_ += size;
  if (memory_bytes_ > memory_limit_) return SpillLargest();
  return absl::OkStatus();
}

absl::Status TxnBuffer::SpillLargest() {
  Txn* largest = nullptr;
  for (auto& [xid, txn] : txns_) {
    if (largest == nullptr || txn->memory_bytes > largest->memory_bytes) largest = txn.get();
  }
  return largest != nullptr ? Spill(*largest) : absl::OkStatus();
}

absl::Status TxnBuffer::Spill(Txn& txn) {
  if (txn.entries.empty()) return absl::OkStatus();
  if (txn.spill == nullptr) {
    std::string path = absl::StrCat(spill_dir_, "/ductstream-spill-XXXXXX");
    const int fd = ::mkstemp(path.data());
    if (fd < 0) return IoError(absl::StrCat("cannot create a file in ", spill_dir_));
    ::unlink(path.c_str());  // anonymous from now on: nothing to clean up after a crash
    txn.spill = ::fdopen(fd, "w+b");
    if (txn.spill == nullptr) {
      ::close(fd);
      return IoError("fdopen");
    }
    std::setvbuf(txn.spill, nullptr, _IOFBF, kSpillIoBuffer);
  }
  for (const Entry& e : txn.entries) {
    SpillHeader h{e.lsn, e.xid, static_cast<uint32_t>(e.message.size())};
    if (std::fwrite(&h, sizeof h, 1, txn.spill) != 1 ||
        std::fwrite(e.message.data(), 1, e.message.size(), txn.spill) != e.message.size()) {
      return IoError(absl::StrCat("write to a file in ", spill_dir_));
    }
    spilled_bytes_total_ += static_cast<int64_t>(sizeof h + e.message.size());
  }
  txn.entries.clear();
  txn.entries.shrink_to_fit();
  memory_bytes_ -= txn.memory_bytes;
  txn.memory_bytes = 0;
  return absl::OkStatus();
}

absl::Status TxnBuffer::Abort(Xid top, Xid sub) {
  auto it = txns_.find(top.value());
  if (it == txns_.end()) return absl::OkStatus();  // nothing was buffered for it
  if (sub == top) {
    Forget(top.value());
    return absl::OkStatus();
  }
  Txn& txn = *it->second;
  txn.aborted_subxacts.insert(sub.value());
  const auto removed = std::remove_if(txn.entries.begin(), txn.entries.end(),
                                      [&](const Entry& e) { return e.xid == sub.value(); });
  int64_t freed = 0;
  for (auto e = removed; e != txn.entries.end(); ++e) freed += EntryBytes(*e);
  txn.entries.erase(removed, txn.entries.end());
  txn.memory_bytes -= freed;
  memory_bytes_ -= freed;
  return absl::OkStatus();
}

absl::Status TxnBuffer::Commit(Xid top, const Visitor& visit) {
  auto it = txns_.find(top.value());
  if (it == txns_.end()) return absl::OkStatus();  // a streamed transaction with no data for us
  Txn& txn = *it->second;
  absl::Status status;
  if (txn.spill != nullptr) {
    // A transaction that spilled is replayed from its file alone: its in-memory tail (up to
    // memory_limit bytes) follows the rest to disk first instead of staying allocated while the
    // replay fills batches, the in-flight queue and the writer (DESIGN.md §2 invariant 4: peaks
    // add up otherwise).
    status = Spill(txn);
    if (status.ok() && (std::fflush(txn.spill) != 0 || std::fseek(txn.spill, 0, SEEK_SET) != 0)) {
      status = IoError("rewind");
    }
    std::string message;
    SpillHeader h;
    while (status.ok() && std::fread(&h, sizeof h, 1, txn.spill) == 1) {
      message.resize(h.length);
      if (std::fread(message.data(), 1, h.length, txn.spill) != h.length) {
        status = IoError("truncated record");
        break;
      }
      if (txn.aborted_subxacts.contains(h.xid)) continue;
      status = visit(Lsn(h.lsn), message);
    }
    if (status.ok() && std::ferror(txn.spill)) status = IoError("read");
  }
  for (Entry& e : txn.entries) {
    if (!status.ok()) break;
    status = visit(Lsn(e.lsn), e.message);  // aborted subtransactions were already removed
    // Each message is released once decoded, so memory shrinks as the replay's batches grow.
    const int64_t size = EntryBytes(e) - static_cast<int64_t>(sizeof(Entry));
    std::string().swap(e.message);
    txn.memory_bytes -= size;
    memory_bytes_ -= size;
  }
  Forget(top.value());
  return status;
}

void TxnBuffer::Forget(uint32_t top) {
  auto it = txns_.find(top);
  if (it == txns_.end()) return;
  memory_bytes_ -= it->second->memory_bytes;
  if (it->second->spill != nullptr) std::fclose(it->second->spill);
  txns_.erase(it);
}

void TxnBuffer::Clear() {
  while (!txns_.empty()) Forget(txns_.begin()->first);
}

}  // namespace ductstream::cdc
