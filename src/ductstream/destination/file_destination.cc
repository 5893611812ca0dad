#include "ductstream/destination/file_destination.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "ductstream/base/status.h"

namespace ductstream::destination {
namespace {

namespace fs = std::filesystem;

absl::Status Errno(absl::string_view what, const std::string& path) {
  const int err = errno;
  return absl::Status(err == ENOSPC || err == EDQUOT ? absl::StatusCode::kResourceExhausted
                                                     : absl::StatusCode::kInternal,
                      absl::StrCat(what, " ", path, ": ", std::strerror(err)));
}

// Writes `data` to `path` atomically and durably: temp file, fsync, rename.
absl::Status WriteFileDurably(const std::string& path, const std::string& data) {
  const std::string tmp = absl::StrCat(path, ".tmp");
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return Errno("cannot create", tmp);
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      absl::Status s = Errno("cannot write", tmp);
      ::close(fd);
      return s;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    absl::Status s = Errno("cannot fsync", tmp);
    ::close(fd);
    return s;
  }
  if (::close(fd) != 0) return Errno("cannot close", tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return Errno("cannot rename to", path);
  return absl::OkStatus();
}

absl::Status SyncDirectory(const std::string& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Errno("cannot open directory", dir);
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) return Errno("cannot fsync directory", dir);
  return absl::OkStatus();
}

class FileDestination final : public runner::Destination {
 public:
  FileDestination(FileDestinationConfig config, std::unique_ptr<codec::Encoder> encoder)
      : config_(std::move(config)), encoder_(std::move(encoder)) {}

  const std::string& name() const override { return config_.name; }

  absl::Status Write(const cdc::ChangeBatch& batch) override {
    std::set<std::string> dirs;
    for (const cdc::RelationChanges& changes : batch.relations) {
      const std::string relative = FileDestinationPath(changes, config_.format);
      const fs::path path = fs::path(config_.path) / relative;
      const std::string dir = path.parent_path().string();
      if (dirs.insert(dir).second || !created_.contains(dir)) {
        std::error_code ec;
        fs::create_directories(dir, ec);
        if (ec) {
          return absl::InternalError(
              absl::StrCat("cannot create directory ", dir, ": ", ec.message()));
        }
        created_.insert(dir);
      }
      buffer_.clear();
      DS_RETURN_IF_ERROR_CTX(encoder_->Encode(changes, &buffer_),
                             absl::StrCat("encoding ", changes.QualifiedName()));
      DS_RETURN_IF_ERROR(WriteFileDurably(path.string(), buffer_));
    }
    for (const std::string& dir : dirs) DS_RETURN_IF_ERROR(SyncDirectory(dir));
    return absl::OkStatus();
  }

 private:
  FileDestinationConfig config_;
  std::unique_ptr<codec::Encoder> encoder_;
  std::string buffer_;
  std::set<std::string> created_;
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
  DS_ASSIGN_OR_RETURN(auto encoder, codec::MakeEncoder(config.format, config.encoder));
  return std::make_unique<FileDestination>(std::move(config), std::move(encoder));
}

}  // namespace ductstream::destination
