#include "ductstream/cdc/speculative.h"

#include <unistd.h>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include <algorithm>
#include <utility>
#include <vector>

#include <arrow/array/concatenate.h>
#include <arrow/io/buffered.h>
#include <arrow/io/file.h>
#include <arrow/io/memory.h>
#include <arrow/ipc/reader.h>
#include <arrow/ipc/writer.h>
#include <arrow/util/byte_size.h>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "ductstream/base/logging.h"
#include "ductstream/base/status.h"
#include "ductstream/cdc/txn_buffer.h"

namespace ductstream::cdc {

namespace pgo = postgres::pgoutput;

namespace {

absl::Status FromArrow(const arrow::Status& s, absl::string_view what) {
  if (s.ok()) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("streamed transaction: ", what, ": ", s.ToString()));
}

template <typename T>
absl::StatusOr<T> FromArrow(arrow::Result<T> r, absl::string_view what) {
  if (!r.ok()) return FromArrow(r.status(), what);
  return std::move(r).ValueUnsafe();
}

// Rows of aborted subtransactions: [begin, end) of __seq.
struct SeqRange {
  int64_t begin;
  int64_t end;
};

// Gives one relation's speculatively built records their commit labels and removes the rows of
// aborted subtransactions (renumbering __seq as if they had never been sent). False when no row
// is left.
absl::StatusOr<bool> Label(RelationChanges& r, Lsn commit_lsn, int64_t commit_ts_us,
                           const std::vector<SeqRange>& dropped) {
  std::shared_ptr<arrow::RecordBatch> rb = r.records;
  const std::shared_ptr<arrow::Schema>& schema = rb->schema();
  const int seq_index = schema->GetFieldIndex(kSeqColumn);
  const int commit_lsn_index = schema->GetFieldIndex(kCommitLsnColumn);
  const int commit_ts_index = schema->GetFieldIndex(kCommitTsColumn);
  if (seq_index < 0 || commit_lsn_index < 0 || commit_ts_index < 0) {
    return absl::InternalError("streamed transaction: batch without the change schema");
  }
  arrow::ArrayVector columns = rb->columns();
  int64_t rows = rb->num_rows();
  int64_t first_seq = r.first_seq;
  if (!dropped.empty()) {
    const auto& seq = static_cast<const arrow::Int64Array&>(*rb->column(seq_index));
    std::vector<std::pair<int64_t, int64_t>> keep;  // (offset, length) of surviving rows
    std::vector<int64_t> renumbered;
    renumbered.reserve(static_cast<size_t>(rows));
    size_t d = 0;
    int64_t dropped_below = 0;  // aborted rows numbered below the current row
    for (int64_t i = 0; i < rows; ++i) {
      const int64_t s = seq.Value(i);
      while (d < dropped.size() && dropped[d].end <= s) {
        dropped_below += dropped[d].end - dropped[d].begin;
        ++d;
      }
      if (d < dropped.size() && dropped[d].begin <= s) continue;
      renumbered.push_back(s - dropped_below);
      if (!keep.empty() && keep.back().first + keep.back().second == i) {
        ++keep.back().second;
      } else {
        keep.emplace_back(i, 1);
      }
    }
    if (renumbered.empty()) return false;
    if (static_cast<int64_t>(renumbered.size()) != rows) {
      for (auto& column : columns) {
        arrow::ArrayVector slices;
        for (const auto& [offset, length] : keep) slices.push_back(column->Slice(offset, length));
        DS_ASSIGN_OR_RETURN(column, FromArrow(arrow::Concatenate(slices), "dropping rows"));
      }
      rows = static_cast<int64_t>(renumbered.size());
    }
    arrow::Int64Builder seq_builder;
    DS_RETURN_IF_ERROR(FromArrow(seq_builder.AppendValues(renumbered), "__seq"));
    DS_ASSIGN_OR_RETURN(columns[seq_index], FromArrow(seq_builder.Finish(), "__seq"));
    first_seq = renumbered.front();
  }
  DS_ASSIGN_OR_RETURN(
      columns[commit_lsn_index],
      FromArrow(arrow::MakeArrayFromScalar(arrow::UInt64Scalar(commit_lsn.value()), rows),
                "__commit_lsn"));
  DS_ASSIGN_OR_RETURN(
      columns[commit_ts_index],
      FromArrow(
          arrow::MakeArrayFromScalar(
              arrow::TimestampScalar(commit_ts_us, schema->field(commit_ts_index)->type()), rows),
          "__commit_ts"));
  r.records = arrow::RecordBatch::Make(schema, rows, std::move(columns));
  r.first_commit_lsn = commit_lsn;
  r.first_seq = first_seq;
  return true;
}

bool IsRowMessage(char type) { return type == 'I' || type == 'U' || type == 'D' || type == 'T'; }

}  // namespace

// An unlinked temporary file of Arrow IPC streams, one per spilled record batch (each relation
// has its own schema): nothing is left on disk after a crash.
class SpeculativeStreams::SpillFile {
 public:
  static absl::StatusOr<std::unique_ptr<SpillFile>> Create(const std::string& dir) {
    std::string path = absl::StrCat(dir, "/ductstream-stream-XXXXXX");
    const int fd = ::mkstemp(path.data());
    if (fd < 0) {
      return absl::InternalError(
          absl::StrCat("streamed-transaction spill file: cannot create a "
                       "file in ",
                       dir, ": ", std::strerror(errno)));
    }
    ::unlink(path.c_str());
    const int read_fd = ::dup(fd);
    if (read_fd < 0) {
      ::close(fd);
      return absl::InternalError(
          absl::StrCat("streamed-transaction spill file: dup: ", std::strerror(errno)));
    }
    auto file = std::unique_ptr<SpillFile>(new SpillFile());
    DS_ASSIGN_OR_RETURN(auto raw, FromArrow(arrow::io::FileOutputStream::Open(fd), "spill file"));
    DS_ASSIGN_OR_RETURN(file->out_,
                        FromArrow(arrow::io::BufferedOutputStream::Create(
                                      1 << 20, arrow::default_memory_pool(), std::move(raw)),
                                  "spill file"));
    DS_ASSIGN_OR_RETURN(file->in_, FromArrow(arrow::io::ReadableFile::Open(read_fd), "spill file"));
    return file;
  }

  ~SpillFile() {
    (void)out_->Close();
    (void)in_->Close();
  }

  /// Appends `rb`; returns where it is: (offset, length).
  absl::StatusOr<std::pair<int64_t, int64_t>> Write(const arrow::RecordBatch& rb) {
    DS_ASSIGN_OR_RETURN(int64_t start, FromArrow(out_->Tell(), "spill file"));
    DS_ASSIGN_OR_RETURN(auto writer,
                        FromArrow(arrow::ipc::MakeStreamWriter(out_, rb.schema()), "spill write"));
    DS_RETURN_IF_ERROR(FromArrow(writer->WriteRecordBatch(rb), "spill write"));
    DS_RETURN_IF_ERROR(FromArrow(writer->Close(), "spill write"));
    DS_ASSIGN_OR_RETURN(int64_t end, FromArrow(out_->Tell(), "spill file"));
    dirty_ = true;
    return std::make_pair(start, end - start);
  }

  absl::StatusOr<std::shared_ptr<arrow::RecordBatch>> Read(int64_t offset, int64_t length) {
    if (dirty_) {
      DS_RETURN_IF_ERROR(FromArrow(out_->Flush(), "spill flush"));
      dirty_ = false;
    }
    DS_ASSIGN_OR_RETURN(auto bytes, FromArrow(in_->ReadAt(offset, length), "spill read"));
    DS_ASSIGN_OR_RETURN(auto reader,
                        FromArrow(arrow::ipc::RecordBatchStreamReader::Open(
                                      std::make_shared<arrow::io::BufferReader>(std::move(bytes))),
                                  "spill read"));
    DS_ASSIGN_OR_RETURN(auto rb, FromArrow(reader->Next(), "spill read"));
    if (rb == nullptr) return absl::InternalError("streamed-transaction spill file: empty record");
    return rb;
  }

 private:
  SpillFile() = default;
  std::shared_ptr<arrow::io::BufferedOutputStream> out_;
  std::shared_ptr<arrow::io::ReadableFile> in_;
  bool dirty_ = false;
};

struct SpeculativeStreams::Txn {
  struct Stored {
    ChangeBatch batch;                               // its records are null once spilled
    std::vector<std::pair<int64_t, int64_t>> spans;  // per relation, in the spill file
    std::shared_ptr<StagedWork> staged;              // from the stager, if any
  };
  std::unique_ptr<BatchBuilder> builder;
  std::vector<Stored> batches;
  size_t first_in_memory = 0;          // batches before it are spilled
  int64_t stored_bytes = 0;            // of the batches in memory
  std::vector<std::string> relations;  // Relation messages, as sent
  // Which (sub)transaction each row came from: (first __seq, xid) at every change of xid.
  std::vector<std::pair<int64_t, uint32_t>> runs;
  absl::flat_hash_set<uint32_t> aborted;
  std::unique_ptr<SpillFile> spill;
};

SpeculativeStreams::SpeculativeStreams(BuilderOptions options, postgres::TypeLookup lookup,
                                       int64_t memory_limit, std::string spill_dir)
    : options_(options),
      lookup_(std::move(lookup)),
      memory_limit_(memory_limit),
      spill_dir_(SpillDirectory(std::move(spill_dir))) {
  options_.toast_cache_bytes = 0;
}

SpeculativeStreams::~SpeculativeStreams() = default;

int64_t SpeculativeStreams::memory_bytes() const {
  int64_t total = stored_bytes_;
  for (const auto& [xid, txn] : txns_) total += txn->builder->pending_bytes();
  return total;
}

absl::StatusOr<SpeculativeStreams::Txn*> SpeculativeStreams::Open(Xid top) {
  auto& slot = txns_[top.value()];
  if (slot != nullptr) return slot.get();
  slot = std::make_unique<Txn>();
  Txn* txn = slot.get();
  txn->builder = std::make_unique<BatchBuilder>(options_, lookup_, [this, txn](ChangeBatch batch) {
    txn->stored_bytes += batch.bytes;
    stored_bytes_ += batch.bytes;
    // The batch cut by the commit itself is delivered at once: nothing to gain from staging.
    std::shared_ptr<StagedWork> staged = stager_ && !committing_ ? stager_(batch) : nullptr;
    txn->batches.push_back(Txn::Stored{std::move(batch), {}, std::move(staged)});
    return absl::OkStatus();
  });
  pgo::BeginMessage begin;  // commit position and time are labelled at Stream Commit
  begin.xid = top;
  DS_RETURN_IF_ERROR(txn->builder->OnBegin(begin));
  return txn;
}

absl::Status SpeculativeStreams::Process(Xid top, Lsn lsn, absl::string_view message,
                                         pgo::Decoder& decoder) {
  if (message.empty()) return absl::InvalidArgumentError("empty pgoutput message");
  DS_ASSIGN_OR_RETURN(Txn * txn, Open(top));
  if (IsRowMessage(message[0])) {
    DS_ASSIGN_OR_RETURN(Xid sub, StreamedMessageXid(message));
    if (txn->runs.empty() || txn->runs.back().second != sub.value()) {
      txn->runs.emplace_back(txn->builder->next_seq(), sub.value());
    }
  } else if (message[0] == 'R') {
    txn->relations.emplace_back(message);
  }
  txn->builder->set_message_lsn(lsn);
  DS_RETURN_IF_ERROR(decoder.Decode(message, *txn->builder));
  if (stored_bytes_ > memory_limit_) return SpillLargest();
  return absl::OkStatus();
}

absl::Status SpeculativeStreams::SpillLargest() {
  Txn* largest = nullptr;
  for (auto& [xid, txn] : txns_) {
    if (largest == nullptr || txn->stored_bytes > largest->stored_bytes) largest = txn.get();
  }
  return largest != nullptr ? Spill(*largest) : absl::OkStatus();
}

absl::Status SpeculativeStreams::Spill(Txn& txn) {
  for (; txn.first_in_memory < txn.batches.size(); ++txn.first_in_memory) {
    Txn::Stored& s = txn.batches[txn.first_in_memory];
    if (txn.spill == nullptr) {
      DS_ASSIGN_OR_RETURN(txn.spill, SpillFile::Create(spill_dir_));
    }
    for (RelationChanges& r : s.batch.relations) {
      DS_ASSIGN_OR_RETURN(auto span, txn.spill->Write(*r.records));
      s.spans.push_back(span);
      spilled_bytes_total_ += span.second;
      r.records.reset();
    }
    txn.stored_bytes -= s.batch.bytes;
    stored_bytes_ -= s.batch.bytes;
  }
  return absl::OkStatus();
}

void SpeculativeStreams::Abort(Xid top, Xid sub) {
  auto it = txns_.find(top.value());
  if (it == txns_.end()) return;
  if (sub == top) {
    Forget(top.value());
  } else {
    it->second->aborted.insert(sub.value());
  }
}

absl::Status SpeculativeStreams::Commit(
    const pgo::StreamCommitMessage& msg,
    const std::function<absl::Status(absl::string_view)>& relation, const BatchSink& emit) {
  auto it = txns_.find(msg.xid.value());
  if (it == txns_.end()) return absl::InternalError("Stream Commit of an unknown transaction");
  Txn& txn = *it->second;
  auto run = [&]() -> absl::Status {
    const int64_t end_seq = txn.builder->next_seq();
    pgo::CommitMessage commit;
    commit.flags = msg.flags;
    commit.commit_lsn = msg.commit_lsn;
    commit.end_lsn = msg.end_lsn;
    commit.commit_time = msg.commit_time;
    committing_ = true;
    absl::Status flushed = txn.builder->OnCommit(commit);
    if (flushed.ok()) flushed = txn.builder->Flush();  // the last batch, with the checkpoint
    committing_ = false;
    DS_RETURN_IF_ERROR(flushed);

    std::vector<SeqRange> dropped;
    for (size_t i = 0; i < txn.runs.size(); ++i) {
      if (!txn.aborted.contains(txn.runs[i].second)) continue;
      const int64_t begin = txn.runs[i].first;
      const int64_t end = i + 1 < txn.runs.size() ? txn.runs[i + 1].first : end_seq;
      if (end <= begin) continue;
      if (!dropped.empty() && dropped.back().end == begin) {
        dropped.back().end = end;
      } else {
        dropped.push_back({begin, end});
      }
    }
    for (const std::string& m : txn.relations) DS_RETURN_IF_ERROR(relation(m));

    const int64_t commit_ts = pgo::PgTimestampToUnixMicros(msg.commit_time);
    for (size_t b = 0; b < txn.batches.size(); ++b) {
      Txn::Stored& s = txn.batches[b];
      ChangeBatch batch = std::move(s.batch);
      if (b < txn.first_in_memory) {
        for (size_t i = 0; i < batch.relations.size(); ++i) {
          DS_ASSIGN_OR_RETURN(batch.relations[i].records,
                              txn.spill->Read(s.spans[i].first, s.spans[i].second));
        }
      } else {
        txn.stored_bytes -= batch.bytes;
        stored_bytes_ -= batch.bytes;
      }
      std::vector<RelationChanges> kept;
      kept.reserve(batch.relations.size());
      for (RelationChanges& r : batch.relations) {
        DS_ASSIGN_OR_RETURN(bool any, Label(r, msg.commit_lsn, commit_ts, dropped));
        if (any) kept.push_back(std::move(r));
      }
      batch.relations = std::move(kept);
      // What was staged holds exactly these rows only if no row had to be cut out.
      if (dropped.empty()) batch.staged = std::move(s.staged);
      s.staged.reset();
      batch.bytes = 0;
      for (const auto& r : batch.relations) {
        batch.bytes += arrow::util::TotalBufferSize(*r.records);
      }
      if (batch.relations.empty() && !batch.checkpoint.valid()) continue;
      DS_RETURN_IF_ERROR(emit(std::move(batch)));
    }
    return absl::OkStatus();
  };
  const absl::Time start = absl::Now();
  const size_t batches = txn.batches.size();
  const size_t spilled = txn.first_in_memory;
  absl::Status status = run();
  if (status.ok() && batches > 1) {
    base::GetLogger("cdc")->info(
        "streamed transaction {} committed at {}: {} batches labelled ({} read back from the "
        "spill file) in {}",
        msg.xid.value(), msg.commit_lsn.ToString(), batches, spilled,
        absl::FormatDuration(absl::Now() - start));
  }
  Forget(msg.xid.value());
  return status;
}

void SpeculativeStreams::Forget(uint32_t top) {
  auto it = txns_.find(top);
  if (it == txns_.end()) return;
  stored_bytes_ -= it->second->stored_bytes;
  txns_.erase(it);
}

void SpeculativeStreams::Clear() {
  while (!txns_.empty()) Forget(txns_.begin()->first);
}

}  // namespace ductstream::cdc
