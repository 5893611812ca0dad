// Decode speed without a database: replays a recorded pgoutput stream (bench/data/, written by
// bench/record_pgoutput.cc) through
//
//   BM_Decode           the pgoutput decoder alone (a handler that does nothing), and
//   BM_DecodeAndBuild   what the worker's reader thread does per XLogData message: the
//                       transaction assembler, the pgoutput decoder, the type codecs and the
//                       Arrow builders of cdc::BatchBuilder, batches handed to a sink that drops
//                       them (decode-only, like the `null` destination).
//
//   build/release/bench/decode_bench [--benchmark_...]
//   DS_PGOUTPUT_RECORDING=FILE build/release/bench/decode_bench     (another recording)
//
// items_per_second counts changes (rows); bytes_per_second counts pgoutput payload bytes.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "ductstream/cdc/assembler.h"
#include "ductstream/cdc/batch_builder.h"
#include "ductstream/cdc/txn_buffer.h"
#include "ductstream/postgres/pgoutput.h"
#include "pgoutput_recording.h"

namespace {

using ductstream::Lsn;
using ductstream::Oid;
namespace pgo = ductstream::postgres::pgoutput;

const ductstream::bench::Recording& TheRecording() {
  static const auto* recording = [] {
    const char* env = std::getenv("DS_PGOUTPUT_RECORDING");
    const std::string path = env != nullptr ? env : DS_BENCH_DATA_DIR "/pgoutput_16col.bin";
    auto r = ductstream::bench::ReadRecording(path);
    if (!r.ok()) {
      std::cerr << "decode_bench: " << r.status() << "\n";
      std::exit(1);
    }
    return new ductstream::bench::Recording(std::move(*r));
  }();
  return *recording;
}

void Check(const absl::Status& s) {
  if (!s.ok()) {
    std::cerr << "decode_bench: " << s << "\n";
    std::exit(1);
  }
}

// Counts changes and nothing else.
class CountingHandler final : public pgo::Handler {
 public:
  int64_t changes = 0;
  absl::Status OnBegin(const pgo::BeginMessage&) override { return absl::OkStatus(); }
  absl::Status OnCommit(const pgo::CommitMessage&) override { return absl::OkStatus(); }
  absl::Status OnOrigin(const pgo::OriginMessage&) override { return absl::OkStatus(); }
  absl::Status OnRelation(const pgo::RelationMessage&) override { return absl::OkStatus(); }
  absl::Status OnType(const pgo::TypeMessage&) override { return absl::OkStatus(); }
  absl::Status OnInsert(const pgo::InsertMessage&) override { return Count(); }
  absl::Status OnUpdate(const pgo::UpdateMessage&) override { return Count(); }
  absl::Status OnDelete(const pgo::DeleteMessage&) override { return Count(); }
  absl::Status OnTruncate(const pgo::TruncateMessage&) override { return absl::OkStatus(); }
  absl::Status OnMessage(const pgo::LogicalMessage&) override { return absl::OkStatus(); }
  absl::Status OnStreamStart(const pgo::StreamStartMessage&) override { return absl::OkStatus(); }
  absl::Status OnStreamStop() override { return absl::OkStatus(); }
  absl::Status OnStreamCommit(const pgo::StreamCommitMessage&) override { return absl::OkStatus(); }
  absl::Status OnStreamAbort(const pgo::StreamAbortMessage&) override { return absl::OkStatus(); }

 private:
  absl::Status Count() {
    ++changes;
    return absl::OkStatus();
  }
};

void BM_Decode(benchmark::State& state) {
  const auto& rec = TheRecording();
  int64_t changes = 0;
  for (auto _ : state) {
    pgo::Decoder decoder(static_cast<int>(rec.proto_version), rec.parallel_streaming);
    CountingHandler handler;
    for (const auto& m : rec.messages) Check(decoder.Decode(m.payload, handler));
    changes += handler.changes;
  }
  state.SetItemsProcessed(changes);
  state.SetBytesProcessed(state.iterations() * rec.payload_bytes);
}
BENCHMARK(BM_Decode)->Unit(benchmark::kMillisecond);

void BM_DecodeAndBuild(benchmark::State& state) {
  const auto& rec = TheRecording();
  int64_t rows = 0;
  for (auto _ : state) {
    ductstream::cdc::BuilderOptions options;
    options.batch_rows = state.range(0);
    options.max_batch_bytes = 16 << 20;  // the worker's default
    ductstream::cdc::BatchBuilder builder(
        options,
        [](Oid oid) -> absl::StatusOr<ductstream::postgres::TypeInfo> {
          return absl::NotFoundError(
              absl::StrCat("no catalog in the benchmark (oid ", oid.value(), ")"));
        },
        [&rows](ductstream::cdc::ChangeBatch batch) {
          rows += batch.num_rows();
          return absl::OkStatus();
        });
    ductstream::cdc::TxnBuffer buffer(16 << 20, "/tmp");
    ductstream::cdc::TransactionAssembler assembler(static_cast<int>(rec.proto_version),
                                                    rec.parallel_streaming, builder, buffer);
    for (const auto& m : rec.messages) Check(assembler.Process(Lsn(m.wal_start), m.payload));
    Check(builder.Flush());
  }
  state.SetItemsProcessed(rows);
  state.SetBytesProcessed(state.iterations() * rec.payload_bytes);
}
BENCHMARK(BM_DecodeAndBuild)->Arg(10000)->Arg(1000)->Unit(benchmark::kMillisecond);

}  // namespace
