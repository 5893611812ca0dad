#pragma once

// A recorded pgoutput stream: the XLogData payloads of one replication session, in order, so
// that decoding can be measured without a database (bench/decode_bench.cc). Written by
// bench/record_pgoutput.cc. Format (little-endian):
//
//   "DSPGOUT1"  u32 proto_version  u32 parallel_streaming (0/1)
//   then per message: u64 wal_start  u32 length  <length bytes of pgoutput>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace ductstream::bench {

inline constexpr char kRecordingMagic[] = "DSPGOUT1";

struct RecordedMessage {
  uint64_t wal_start = 0;
  std::string payload;
};

struct Recording {
  uint32_t proto_version = 0;
  bool parallel_streaming = false;
  std::vector<RecordedMessage> messages;
  int64_t payload_bytes = 0;
};

inline void AppendU32(std::string& out, uint32_t v) {
  char b[4];
  std::memcpy(b, &v, 4);  // the bench machines are little-endian
  out.append(b, 4);
}

inline void AppendU64(std::string& out, uint64_t v) {
  char b[8];
  std::memcpy(b, &v, 8);
  out.append(b, 8);
}

inline absl::StatusOr<Recording> ReadRecording(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string data = ss.str();
  const size_t header = 8 + 4 + 4;
  if (data.size() < header || data.compare(0, 8, kRecordingMagic) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a pgoutput recording"));
  }
  Recording r;
  uint32_t parallel = 0;
  std::memcpy(&r.proto_version, data.data() + 8, 4);
  std::memcpy(&parallel, data.data() + 12, 4);
  r.parallel_streaming = parallel != 0;
  size_t pos = header;
  while (pos < data.size()) {
    if (data.size() - pos < 12) return absl::DataLossError(absl::StrCat(path, ": truncated"));
    RecordedMessage m;
    uint32_t len = 0;
    std::memcpy(&m.wal_start, data.data() + pos, 8);
    std::memcpy(&len, data.data() + pos + 8, 4);
    pos += 12;
    if (data.size() - pos < len) return absl::DataLossError(absl::StrCat(path, ": truncated"));
    m.payload.assign(data, pos, len);
    pos += len;
    r.payload_bytes += len;
    r.messages.push_back(std::move(m));
  }
  return r;
}

}  // namespace ductstream::bench
