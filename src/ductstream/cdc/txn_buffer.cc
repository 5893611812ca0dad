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

// Message blocks: 1 MiB, smaller under a small memory limit so that a block is a fraction of it.
constexpr int64_t kMaxBlockBytes = 1 << 20;
constexpr int64_t kMinBlockBytes = 256;

absl::Status IoError(absl::string_view what) {
  return absl::InternalError(
      absl::StrCat("streamed-transaction spill file: ", what, ": ", std::strerror(errno)));
}

}  // namespace

std::string SpillDirectory(std::string dir) {
  if (!dir.empty()) return dir;
  const char* tmp = std::getenv("TMPDIR");
  return tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
}

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

TxnBuffer::TxnBuffer(int64_t memory_limit, std::string spill_dir, arrow::MemoryPool* pool)
    : memory_limit_(memory_limit),
      block_bytes_(std::clamp(memory_limit / 16, kMinBlockBytes, kMaxBlockBytes)),
      spill_dir_(SpillDirectory(std::move(spill_dir))),
      pool_(pool) {}

TxnBuffer::~TxnBuffer() { Clear(); }

void TxnBuffer::Account(Txn& txn, int64_t delta) {
  txn.memory_bytes += delta;
  memory_bytes_ += delta;
}

absl::Status TxnBuffer::Store(Txn& txn, Lsn lsn, Xid xid, absl::string_view message) {
  const auto length = static_cast<int64_t>(message.size());
  if (txn.blocks.empty() || txn.block_used + length > txn.blocks.back()->size()) {
    // A message larger than a block gets a block of its own.
    auto block = arrow::AllocateBuffer(std::max(block_bytes_, length), pool_);
    if (!block.ok()) {
      return absl::ResourceExhaustedError(
          absl::StrCat("streamed-transaction buffer: cannot allocate ",
                       std::max(block_bytes_, length), " bytes: ", block.status().ToString()));
    }
    Account(txn, (*block)->capacity());
    txn.blocks.push_back(std::move(*block));
    txn.block_used = 0;
  }
  std::memcpy(txn.blocks.back()->mutable_data() + txn.block_used, message.data(), message.size());
  const size_t capacity = txn.entries.capacity();
  txn.entries.push_back(Entry{lsn.value(), xid.value(), static_cast<uint32_t>(length),
                              static_cast<uint32_t>(txn.blocks.size() - 1),
                              static_cast<uint32_t>(txn.block_used)});
  Account(txn, static_cast<int64_t>((txn.entries.capacity() - capacity) * sizeof(Entry)));
  txn.block_used += length;
  return absl::OkStatus();
}

absl::Status TxnBuffer::Append(Xid top, Lsn lsn, absl::string_view message) {
  DS_ASSIGN_OR_RETURN(Xid xid, StreamedMessageXid(message));
  if (message.size() > UINT32_MAX) {
    return absl::InvalidArgumentError("streamed pgoutput message larger than 4 GiB");
  }
  auto& slot = txns_[top.value()];
  if (!slot) slot = std::make_unique<Txn>();
  DS_RETURN_IF_ERROR(Store(*slot, lsn, xid, message));
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

void TxnBuffer::ReleaseMemory(Txn& txn) {
  txn.entries.clear();
  txn.entries.shrink_to_fit();
  txn.blocks.clear();
  txn.block_used = 0;
  Account(txn, -txn.memory_bytes);
}

absl::Status TxnBuffer::Spill(Txn& txn) {
  if (txn.entries.empty()) {
    ReleaseMemory(txn);  // blocks left by aborted subtransactions: nothing to write
    return absl::OkStatus();
  }
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
    SpillHeader h{e.lsn, e.xid, e.length};
    if (std::fwrite(&h, sizeof h, 1, txn.spill) != 1 ||
        std::fwrite(txn.message(e).data(), 1, e.length, txn.spill) != e.length) {
      return IoError(absl::StrCat("write to a file in ", spill_dir_));
    }
    spilled_bytes_total_ += static_cast<int64_t>(sizeof h + e.length);
  }
  ReleaseMemory(txn);
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
  // The messages' bytes stay in their blocks (still counted) until the transaction's memory is
  // released; aborted subtransactions are rare.
  txn.entries.erase(std::remove_if(txn.entries.begin(), txn.entries.end(),
                                   [&](const Entry& e) { return e.xid == sub.value(); }),
                    txn.entries.end());
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
  // Aborted subtransactions were already removed from the entries. Each block is released once
  // its last message is decoded, so memory shrinks as the replay's batches grow.
  size_t released = 0;  // blocks before this one are released
  for (const Entry& e : txn.entries) {
    if (!status.ok()) break;
    for (; released < e.block; ++released) {
      Account(txn, -txn.blocks[released]->capacity());
      txn.blocks[released].reset();
    }
    status = visit(Lsn(e.lsn), txn.message(e));
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
