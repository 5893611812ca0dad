#include "ductstream/destination/file_destination.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <arrow/io/interfaces.h>
#include <arrow/record_batch.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "ductstream/base/status.h"
#include "ductstream/codec/arrow_codec.h"
#include "ductstream/codec/parquet_codec.h"

namespace ductstream::destination {
namespace {

namespace fs = std::filesystem;

absl::Status Errno(absl::string_view what, const std::string& path) {
  const int err = errno;
  return absl::Status(err == ENOSPC || err == EDQUOT ? absl::StatusCode::kResourceExhausted
                                                     : absl::StatusCode::kInternal,
                      absl::StrCat(what, " ", path, ": ", std::strerror(err)));
}

// An Arrow output stream over a file descriptor, so that the Parquet writer streams pages to the
// file instead of building the whole file in memory. Buffered: the writer emits page headers of a
// few dozen bytes between pages. Keeps the status of the first failed system call, whose errno
// (ENOSPC → ResourceExhausted) an arrow::Status cannot carry. Does not own the descriptor.
class FdOutputStream final : public arrow::io::OutputStream {
 public:
  static constexpr size_t kBufferBytes = 256 << 10;

  FdOutputStream(int fd, std::string path) : fd_(fd), path_(std::move(path)) {
    buffer_.reserve(kBufferBytes);
  }

  arrow::Status Write(const void* data, int64_t nbytes) override {
    if (closed_) return arrow::Status::IOError("write to a closed stream");
    for (const auto& [address, name] : watched_) {
      if (address == data) found_.emplace_back(name, position_);
    }
    const char* p = static_cast<const char*>(data);
    const auto n = static_cast<size_t>(nbytes);
    position_ += nbytes;
    if (buffer_.size() + n <= kBufferBytes) {
      buffer_.append(p, n);
      return buffer_.size() == kBufferBytes ? Flush() : arrow::Status::OK();
    }
    ARROW_RETURN_NOT_OK(Flush());
    if (n < kBufferBytes) {
      buffer_.append(p, n);
      return arrow::Status::OK();
    }
    return WriteAll(p, n);  // a whole page: no copy
  }

  arrow::Status Flush() override {
    arrow::Status s = WriteAll(buffer_.data(), buffer_.size());
    buffer_.clear();
    return s;
  }

  arrow::Status Close() override {
    if (closed_) return arrow::Status::OK();
    closed_ = true;
    return Flush();
  }

  bool closed() const override { return closed_; }
  arrow::Result<int64_t> Tell() const override { return position_; }

  /// The first system call failure, with its errno; OK if none.
  const absl::Status& error() const { return error_; }

  /// Records where in the file a write of the bytes at `address` (a buffer the caller knows the
  /// writer passes on whole, such as an Arrow IPC body buffer) begins: found().
  void Watch(const void* address, const char* name) { watched_.emplace_back(address, name); }
  const std::vector<std::pair<const char*, int64_t>>& found() const { return found_; }

 private:
  arrow::Status WriteAll(const char* p, size_t n) {
    if (!error_.ok()) return arrow::Status::IOError(error_.message());
    while (n > 0) {
      const ssize_t w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        error_ = Errno("cannot write", path_);
        return arrow::Status::IOError(error_.message());
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
    return arrow::Status::OK();
  }

  const int fd_;
  const std::string path_;
  std::string buffer_;
  int64_t position_ = 0;
  bool closed_ = false;
  absl::Status error_;
  std::vector<std::pair<const void*, const char*>> watched_;
  std::vector<std::pair<const char*, int64_t>> found_;
};

// How StageFile leaves the file: on disk (fsync), or on its way there (writeback started, for
// a file that is finished — and fsync'ed — later).
enum class Durability { kSynced, kWritebackStarted };

// Writes the contents of `path` durably to its temp file `tmp`: `fill` writes, then fsync. A
// failure removes the temp file. Nothing is visible under `path` until Publish renames it.
absl::Status StageFile(
    const std::string& tmp,
    const std::function<absl::Status(const std::shared_ptr<FdOutputStream>&)>& fill,
    Durability durability = Durability::kSynced) {
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("cannot create", tmp);
  auto stream = std::make_shared<FdOutputStream>(fd, tmp);
  absl::Status s = fill(stream);
  if (s.ok() || !stream->error().ok()) {
    (void)stream->Close();
    if (!stream->error().ok()) s = stream->error();  // the real cause, e.g. ENOSPC
  }
  if (s.ok() && durability == Durability::kSynced && ::fsync(fd) != 0) {
    s = Errno("cannot fsync", tmp);
  }
  if (s.ok() && durability == Durability::kWritebackStarted) {
    // Without this the kernel would keep the file in the page cache until its dirty-page
    // thresholds or 30 s expiry, and the fsync after the commit would write all of it then.
    (void)::sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
  }
  if (::close(fd) != 0 && s.ok()) s = Errno("cannot close", tmp);
  if (!s.ok()) ::unlink(tmp.c_str());
  return s;
}

// A file's name while it is written: hidden (a leading '.'), as dataset readers (pyarrow,
// Spark, Hive) skip such files, and ending in ".tmp".
std::string TempPath(const fs::path& path) {
  return (path.parent_path() / absl::StrCat(".", path.filename().string(), ".tmp")).string();
}

absl::Status SyncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("cannot open directory", dir);
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Errno("cannot fsync directory", dir);
  return absl::OkStatus();
}

// The files of one batch, encoded and fsync'ed under temporary names by Prepare; WritePrepared
// renames them into place. Removed if the batch is never published (the flow stopped first).
struct StagedFiles final : runner::Prepared {
  std::vector<std::pair<std::string, std::string>> files;  // (temp path, final path)
  std::set<std::string> dirs;
  bool published = false;

  ~StagedFiles() override {
    if (published) return;
    for (const auto& [tmp, path] : files) ::unlink(tmp.c_str());
  }
};

// Where a commit label's values are in a staged Arrow file: the `rows` values of `column` (8
// bytes each) start at byte `offset`.
struct LabelSpan {
  const char* column;
  int64_t offset;
  int64_t rows;
};

constexpr const char* kCommitLabels[] = {cdc::kCommitLsnColumn, cdc::kCommitTsColumn};

// The values buffer of a commit label column, if it is one that can be patched in place: 8-byte
// values, no nulls (so no validity bitmap in the IPC body).
const uint8_t* LabelValues(const arrow::ArrayData& a) {
  const auto id = a.type->id();
  if (id != arrow::Type::UINT64 && id != arrow::Type::INT64 && id != arrow::Type::TIMESTAMP) {
    return nullptr;
  }
  if (a.null_count != 0 || a.buffers.size() != 2 || a.buffers[1] == nullptr) return nullptr;
  return a.buffers[1]->data() + a.offset * 8;
}

// Writes `changes` to `out` as an Arrow IPC stream (codec::WriteArrowStream, what the arrow
// encoder returns) straight to the file: no intermediate copy of a batch that may be
// max_batch_bytes. With `labels`, also finds where the commit labels' values land in the file:
// the IPC writer hands each body buffer to the stream whole, and writes a fixed-width, null-free
// column's values as they are, so a batch labelled later differs from this one only in those
// bytes (FileDestinationTest checks that the files are identical).
absl::Status WriteArrow(const cdc::RelationChanges& changes,
                        const std::shared_ptr<FdOutputStream>& out,
                        std::vector<LabelSpan>* labels = nullptr) {
  const arrow::RecordBatch& rb = *changes.records;
  size_t expected = 0;
  if (labels != nullptr) {
    for (const char* column : kCommitLabels) {
      const int index = rb.schema()->GetFieldIndex(column);
      if (index < 0) continue;
      const uint8_t* values = LabelValues(*rb.column_data(index));
      if (values == nullptr) {
        return absl::FailedPreconditionError(
            absl::StrCat("column ", column, " cannot be patched in place"));
      }
      out->Watch(values, column);
      ++expected;
    }
  }
  absl::Status status = codec::WriteArrowStream(changes, out);
  if (!out->error().ok()) return out->error();  // the real cause, e.g. ENOSPC
  DS_RETURN_IF_ERROR(status);
  if (labels != nullptr) {
    if (out->found().size() != expected) {
      return absl::FailedPreconditionError("the commit labels were not written in place");
    }
    for (const auto& [column, offset] : out->found()) {
      labels->push_back(LabelSpan{column, offset, rb.num_rows()});
    }
  }
  return absl::OkStatus();
}

// A streamed transaction's batch written before the commit (Stage): its Arrow files, complete
// but for the commit labels, under temporary names, not yet fsync'ed. Removed if not used.
struct UnlabelledFiles final : runner::Prepared {
  struct File {
    std::string tmp;  // empty once handed over to StagedFiles
    std::string dir;
    std::string relation;
    int64_t rows = 0;
    std::vector<LabelSpan> labels;
  };
  std::vector<File> files;

  ~UnlabelledFiles() override {
    for (const File& f : files) {
      if (!f.tmp.empty()) ::unlink(f.tmp.c_str());
    }
  }
};

absl::Status PwriteAll(int fd, const uint8_t* p, int64_t n, int64_t offset,
                       const std::string& path) {
  while (n > 0) {
    const ssize_t w = ::pwrite(fd, p, static_cast<size_t>(n), offset);
    if (w < 0) {
      if (errno == EINTR) continue;
      return Errno("cannot write", path);
    }
    p += w;
    n -= w;
    offset += w;
  }
  return absl::OkStatus();
}

class FileDestination final : public runner::Destination {
 public:
  explicit FileDestination(FileDestinationConfig config) : config_(std::move(config)) {}

  const std::string& name() const override { return config_.name; }

  absl::Status Write(const cdc::ChangeBatch& batch) override {
    DS_ASSIGN_OR_RETURN(auto staged, Prepare(batch));
    return WritePrepared(batch, std::move(staged));
  }

  // Encoding is the expensive part of a write: it runs here, on the data path's threads, for
  // several batches at once.
  bool prepares() const override { return true; }

  absl::StatusOr<std::unique_ptr<runner::Prepared>> Prepare(
      const cdc::ChangeBatch& batch) override {
    auto staged = std::make_unique<StagedFiles>();
    // Encoders may keep per-schema state: each preparation has its own (cheap to make).
    std::unique_ptr<codec::Encoder> encoder;
    if (config_.format != codec::WireFormat::kParquet &&
        config_.format != codec::WireFormat::kArrow) {
      DS_ASSIGN_OR_RETURN(encoder, codec::MakeEncoder(config_.format, config_.encoder));
    }
    for (const cdc::RelationChanges& changes : batch.relations) {
      const std::string relative = FileDestinationPath(changes, config_.format);
      const fs::path path = fs::path(config_.path) / relative;
      const std::string dir = path.parent_path().string();
      if (staged->dirs.insert(dir).second) DS_RETURN_IF_ERROR(CreateDirectory(dir));
      const std::string tmp = TempPath(path);
      DS_RETURN_IF_ERROR(
          StageFile(tmp, [&](const std::shared_ptr<FdOutputStream>& out) -> absl::Status {
            if (config_.format == codec::WireFormat::kParquet) {
              // Streamed to the file page by page (the largest file of a flow is never in memory).
              return codec::WriteParquet(changes, config_.encoder, out);
            }
            if (config_.format == codec::WireFormat::kArrow) return WriteArrow(changes, out);
            // The other formats encode the whole file first (their encoders return strings).
            std::string data;
            DS_RETURN_IF_ERROR_CTX(encoder->Encode(changes, &data),
                                   absl::StrCat("encoding ", changes.QualifiedName()));
            if (!out->Write(data.data(), static_cast<int64_t>(data.size())).ok()) {
              return out->error();
            }
            return absl::OkStatus();
          }));
      staged->files.emplace_back(tmp, path.string());
    }
    return staged;
  }

  // Arrow IPC keeps the commit labels' bytes as they are: a streamed transaction's files can be
  // written while it streams, and only those bytes rewritten at its commit. (Parquet and the
  // other formats encode or compress them with everything else.)
  bool stages() const override { return config_.format == codec::WireFormat::kArrow; }

  absl::StatusOr<std::unique_ptr<runner::Prepared>> Stage(
      const cdc::ChangeBatch& unlabelled) override {
    if (!stages()) return absl::UnimplementedError("only arrow files are staged");
    auto staged = std::make_unique<UnlabelledFiles>();
    for (const cdc::RelationChanges& changes : unlabelled.relations) {
      const fs::path path = fs::path(config_.path) / FileDestinationPath(changes, config_.format);
      UnlabelledFiles::File file;
      file.dir = path.parent_path().string();
      file.relation = changes.QualifiedName();
      file.rows = changes.num_rows();
      DS_RETURN_IF_ERROR(CreateDirectory(file.dir));
      // Named for this process and staging, not for the commit, which is not known yet.
      const std::string tmp =
          absl::StrFormat("%s/.staged-%d-%d.%s.tmp", file.dir, ::getpid(),
                          staged_files_.fetch_add(1), codec::FileExtension(config_.format));
      DS_RETURN_IF_ERROR(StageFile(
          tmp,
          [&](const std::shared_ptr<FdOutputStream>& out) {
            return WriteArrow(changes, out, &file.labels);
          },
          Durability::kWritebackStarted));
      file.tmp = tmp;
      staged->files.push_back(std::move(file));
    }
    return staged;
  }

  // Writes the commit labels into the staged files and makes them durable: what Prepare would
  // have written for `batch`, byte for byte.
  absl::StatusOr<std::unique_ptr<runner::Prepared>> PrepareStaged(
      const cdc::ChangeBatch& batch, std::unique_ptr<runner::Prepared> prepared) override {
    auto* unlabelled = dynamic_cast<UnlabelledFiles*>(prepared.get());
    if (unlabelled == nullptr) return absl::InternalError("file destination: nothing was staged");
    if (unlabelled->files.size() != batch.relations.size()) {
      return absl::FailedPreconditionError("the staged files are not the batch's");
    }
    auto staged = std::make_unique<StagedFiles>();
    for (size_t i = 0; i < batch.relations.size(); ++i) {
      const cdc::RelationChanges& changes = batch.relations[i];
      UnlabelledFiles::File& file = unlabelled->files[i];
      if (file.relation != changes.QualifiedName() || file.rows != changes.num_rows()) {
        return absl::FailedPreconditionError("the staged files are not the batch's");
      }
      const int fd = ::open(file.tmp.c_str(), O_WRONLY | O_CLOEXEC);
      if (fd < 0) return Errno("cannot open", file.tmp);
      absl::Status s;
      for (const LabelSpan& span : file.labels) {
        const std::shared_ptr<arrow::Array> column = changes.records->GetColumnByName(span.column);
        const uint8_t* values = column != nullptr ? LabelValues(*column->data()) : nullptr;
        if (values == nullptr || span.rows != column->length()) {
          s = absl::FailedPreconditionError(
              absl::StrCat("the batch's ", span.column, " cannot be patched in"));
          break;
        }
        s = PwriteAll(fd, values, span.rows * 8, span.offset, file.tmp);
        if (!s.ok()) break;
      }
      if (s.ok() && ::fsync(fd) != 0) s = Errno("cannot fsync", file.tmp);
      if (::close(fd) != 0 && s.ok()) s = Errno("cannot close", file.tmp);
      if (!s.ok()) return s;
      staged->files.emplace_back(
          std::exchange(file.tmp, {}),
          (fs::path(config_.path) / FileDestinationPath(changes, config_.format)).string());
      staged->dirs.insert(file.dir);
    }
    return staged;
  }

  absl::Status WritePrepared(const cdc::ChangeBatch& /*batch*/,
                             std::unique_ptr<runner::Prepared> prepared) override {
    auto* staged = dynamic_cast<StagedFiles*>(prepared.get());
    if (staged == nullptr) return absl::InternalError("file destination: nothing was staged");
    for (const auto& [tmp, path] : staged->files) {
      if (::rename(tmp.c_str(), path.c_str()) != 0) return Errno("cannot rename to", path);
    }
    staged->published = true;
    for (const std::string& dir : staged->dirs) DS_RETURN_IF_ERROR(SyncDirectory(dir));
    return absl::OkStatus();
  }

 private:
  // Called from several preparing threads at once.
  absl::Status CreateDirectory(const std::string& dir) {
    absl::MutexLock lock(&mu_);
    if (created_.contains(dir)) return absl::OkStatus();
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) {
      return absl::InternalError(absl::StrCat("cannot create directory ", dir, ": ", ec.message()));
    }
    created_.insert(dir);
    return absl::OkStatus();
  }

  const FileDestinationConfig config_;
  std::atomic<int64_t> staged_files_{0};
  absl::Mutex mu_;
  std::set<std::string> created_ ABSL_GUARDED_BY(mu_);
};

// PostgreSQL identifiers may contain '/': percent-encode it (and '%') so a table name can never
// leave the destination directory or collide with another.
std::string PathSafe(absl::string_view name) {
  std::string out;
  for (char c : name) {
    if (c == '/' || c == '%' || c == '\0') {
      absl::StrAppend(&out, absl::StrFormat("%%%02X", static_cast<unsigned char>(c)));
    } else {
      out.push_back(c);
    }
  }
  return out;
}

}  // namespace

std::string FileDestinationPath(const cdc::RelationChanges& changes, codec::WireFormat format) {
  return absl::StrFormat("%s.%s/%016X-%010d.%s", PathSafe(changes.schema), PathSafe(changes.table),
                         changes.first_commit_lsn.value(), changes.first_seq,
                         codec::FileExtension(format));
}

absl::StatusOr<std::unique_ptr<runner::Destination>> MakeFileDestination(
    FileDestinationConfig config) {
  if (config.path.empty()) {
    return absl::InvalidArgumentError("file destination: option path is required");
  }
  std::error_code ec;
  fs::create_directories(config.path, ec);
  if (ec) {
    return absl::FailedPreconditionError(
        absl::StrCat("file destination ", config.name, ": cannot create directory ", config.path,
                     ": ", ec.message(), " (choose a writable path)"));
  }
  // An unsupported format or encoder option is reported now, not at the first batch.
  DS_RETURN_IF_ERROR(codec::MakeEncoder(config.format, config.encoder).status());
  return std::make_unique<FileDestination>(std::move(config));
}

}  // namespace ductstream::destination
