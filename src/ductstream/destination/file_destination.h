#pragma once

// The `file` destination: every relation's changes of a batch become one file in the flow's
// wire format, at
//
//   <path>/<schema>.<table>/<commit LSN, 16 hex digits>-<sequence, 10 digits>.<extension>
//
// named after the relation's first change in the batch. A replay from the checkpoint rebuilds
// batches that start at the same changes (see cdc/batch_builder.h), so it overwrites the files
// it re-creates instead of duplicating their rows. Each file is written to a temporary name,
// fsync'ed, renamed into place and its directory fsync'ed: a batch is durable when Write returns.
// Parquet is streamed to the temporary file as it is encoded (codec/parquet_codec.h), and Arrow
// IPC written straight to it, so writing a batch costs a few pages of memory on top of the batch
// itself, not a copy of the whole file.
//
// Arrow files of a streamed transaction are staged (runner::Destination::Stage): written while
// the transaction streams, with its commit labels patched in at the commit.

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "ductstream/codec/codec.h"
#include "ductstream/runner/destination.h"

namespace ductstream::destination {

struct FileDestinationConfig {
  std::string name;
  std::string path;  // directory, created when missing
  codec::WireFormat format = codec::WireFormat::kParquet;
  codec::EncoderOptions encoder;
};

absl::StatusOr<std::unique_ptr<runner::Destination>> MakeFileDestination(
    FileDestinationConfig config);

/// The file name (relative to the destination directory) that MakeFileDestination uses for
/// `changes`.
std::string FileDestinationPath(const cdc::RelationChanges& changes, codec::WireFormat format);

}  // namespace ductstream::destination
