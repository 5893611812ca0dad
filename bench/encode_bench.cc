// Destination-side encoding speed without a broker or a disk. The recorded pgoutput stream of
// decode_bench (bench/data/, 8 500 inserts, 1 000 updates and 500 deletes into the 16-column
// table of workload `a`) is decoded once into ChangeBatches (batches of 10 000 rows, as the
// worker builds them); then each benchmark encodes every batch, as a destination's writer thread
// does:
//
//   BM_KafkaMessages    the messages of the `kafka` destination, without a producer
//                       (KafkaBatchMessages), with their header lists (librdkafka's
//                       rd_kafka_headers_t, built and freed as the producer would). Arg 1:
//                       message_mode=record, format=json (per change the key, the JSON value and
//                       the headers); Arg 0: message_mode=batch, format=arrow (one Arrow IPC
//                       message per relation and batch).
//   BM_JsonLines        the json wire format (RowJsonRenderer::AppendChange per change), the
//                       rendering alone.
//   BM_Parquet          the parquet wire format (what the `file` destination writes), into
//                       memory; Arg = compression: 0 snappy (the default), 1 none, 2 zstd,
//                       3 lz4. CPU time is the process's (Arrow may use its thread pool).
//
//   build/release/bench/encode_bench [--benchmark_...]
//   DS_PGOUTPUT_RECORDING=FILE build/release/bench/encode_bench     (another recording)
//
// items_per_second counts changes (rows); bytes_per_second the bytes produced (keys, values and
// header values for Kafka; the file for Parquet).
//
// DS_ENCODE_BENCH_DUMP=DIR writes what the benchmarks produce to DIR: kafka.txt and json.jsonl
// (two builds of an A/B must produce the same bytes) and parquet-<compression>-<n>.parquet (the
// same rows, checked with pyarrow).
#include <benchmark/benchmark.h>
#include <librdkafka/rdkafka.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "ductstream/cdc/assembler.h"
#include "ductstream/cdc/batch_builder.h"
#include "ductstream/cdc/txn_buffer.h"
#include "ductstream/codec/codec.h"
#include "ductstream/destination/kafka_destination.h"
#include "ductstream/destination/kafka_options.h"
#include "pgoutput_recording.h"

namespace {

using ductstream::Lsn;
using ductstream::Oid;
namespace cdc = ductstream::cdc;
namespace codec = ductstream::codec;
namespace dest = ductstream::destination;

void Check(const absl::Status& s) {
  if (!s.ok()) {
    std::cerr << "encode_bench: " << s << "\n";
    std::exit(1);
  }
}

// The recording decoded into the batches the worker's reader thread would hand to a destination.
const std::vector<cdc::ChangeBatch>& TheBatches() {
  static const auto* batches = [] {
    const char* env = std::getenv("DS_PGOUTPUT_RECORDING");
    const std::string path = env != nullptr ? env : DS_BENCH_DATA_DIR "/pgoutput_16col.bin";
    auto rec = ductstream::bench::ReadRecording(path);
    if (!rec.ok()) {
      std::cerr << "encode_bench: " << rec.status() << "\n";
      std::exit(1);
    }
    auto* out = new std::vector<cdc::ChangeBatch>();
    cdc::BuilderOptions options;  // the worker's defaults: 10 000 rows
    cdc::BatchBuilder builder(
        options,
        [](Oid oid) -> absl::StatusOr<ductstream::postgres::TypeInfo> {
          return absl::NotFoundError(
              absl::StrCat("no catalog in the benchmark (oid ", oid.value(), ")"));
        },
        [out](cdc::ChangeBatch batch) {
          if (!batch.empty()) out->push_back(std::move(batch));
          return absl::OkStatus();
        });
    cdc::TxnBuffer buffer(16 << 20, "/tmp");
    cdc::TransactionAssembler assembler(static_cast<int>(rec->proto_version),
                                        rec->parallel_streaming, builder, buffer);
    for (const auto& m : rec->messages) Check(assembler.Process(Lsn(m.wal_start), m.payload));
    Check(builder.Flush());
    return out;
  }();
  return *batches;
}

// DS_ENCODE_BENCH_DUMP's file `name`, or none.
std::unique_ptr<std::ofstream> DumpFile(const char* name) {
  const char* dir = std::getenv("DS_ENCODE_BENCH_DUMP");
  if (dir == nullptr) return nullptr;
  return std::make_unique<std::ofstream>(absl::StrCat(dir, "/", name), std::ios::binary);
}

int64_t Rows() {
  int64_t rows = 0;
  for (const auto& batch : TheBatches()) rows += batch.num_rows();
  return rows;
}

void BM_KafkaMessages(benchmark::State& state) {
  const auto& batches = TheBatches();
  dest::KafkaOptions options;
  options.brokers = "localhost:9092";  // never contacted
  options.topic = "cdc.{schema}.{table}";
  options.format = codec::WireFormat::kJson;
  options.message_mode = static_cast<dest::KafkaMessageMode>(state.range(0));
  if (options.message_mode == dest::KafkaMessageMode::kBatch) {
    options.format = codec::WireFormat::kArrow;
  }
  state.SetLabel(options.message_mode == dest::KafkaMessageMode::kBatch ? "batch, arrow"
                                                                        : "record, json");
  auto messages = dest::KafkaBatchMessages::Create(options);
  Check(messages.status());
  int64_t bytes = 0;
  for (auto _ : state) {
    for (const cdc::ChangeBatch& batch : batches) {
      Check((*messages)->Build(batch));
      for (size_t i = 0; i < (*messages)->size(); ++i) {
        rd_kafka_headers_t* headers = rd_kafka_headers_new(9);
        (*messages)->ForEachHeader(i, [&](absl::string_view name, absl::string_view value) {
          rd_kafka_header_add(headers, name.data(), static_cast<ssize_t>(name.size()), value.data(),
                              static_cast<ssize_t>(value.size()));
          bytes += static_cast<int64_t>(value.size());
        });
        bytes += static_cast<int64_t>((*messages)->key(i).size() + (*messages)->value(i).size());
        benchmark::DoNotOptimize(headers);
        rd_kafka_headers_destroy(headers);
      }
    }
  }
  state.SetItemsProcessed(state.iterations() * Rows());
  state.SetBytesProcessed(bytes);
  if (options.message_mode != dest::KafkaMessageMode::kRecord) return;
  if (auto dump = DumpFile("kafka.txt")) {
    for (const cdc::ChangeBatch& batch : batches) {
      Check((*messages)->Build(batch));
      for (size_t i = 0; i < (*messages)->size(); ++i) {
        *dump << "topic " << (*messages)->topic(i) << "\nkey "
              << ((*messages)->has_key(i) ? (*messages)->key(i) : "(none)") << "\n";
        (*messages)->ForEachHeader(i, [&](absl::string_view name, absl::string_view value) {
          *dump << name << ": " << value << "\n";
        });
        *dump << (*messages)->value(i) << "\n";
      }
    }
  }
}
BENCHMARK(BM_KafkaMessages)
    ->Arg(static_cast<int>(dest::KafkaMessageMode::kRecord))
    ->Arg(static_cast<int>(dest::KafkaMessageMode::kBatch))
    ->Unit(benchmark::kMillisecond);

// Encodes every relation of every batch, one output at a time.
template <typename Sink>
void EncodeAll(codec::Encoder& encoder, const std::vector<cdc::ChangeBatch>& batches, Sink sink) {
  std::string out;
  for (const cdc::ChangeBatch& batch : batches) {
    for (const cdc::RelationChanges& changes : batch.relations) {
      out.clear();
      Check(encoder.Encode(changes, &out));
      sink(out);
    }
  }
}

// The benchmark loop of an encoder over every batch: rows and output bytes processed. Returns
// the bytes written over all iterations.
int64_t TimedEncodeAll(benchmark::State& state, codec::Encoder& encoder,
                       const std::vector<cdc::ChangeBatch>& batches) {
  int64_t bytes = 0;
  for (auto _ : state) {
    EncodeAll(encoder, batches,
              [&](const std::string& out) { bytes += static_cast<int64_t>(out.size()); });
  }
  state.SetItemsProcessed(state.iterations() * Rows());
  state.SetBytesProcessed(bytes);
  return bytes;
}

void BM_JsonLines(benchmark::State& state) {
  const auto& batches = TheBatches();
  auto encoder = codec::MakeEncoder(codec::WireFormat::kJson);
  Check(encoder.status());
  TimedEncodeAll(state, **encoder, batches);
  if (auto dump = DumpFile("json.jsonl")) {
    EncodeAll(**encoder, batches, [&](const std::string& out) { *dump << out; });
  }
}
BENCHMARK(BM_JsonLines)->Unit(benchmark::kMillisecond);

void BM_Parquet(benchmark::State& state) {
  const auto& batches = TheBatches();
  codec::EncoderOptions options;
  static constexpr const char* kCompressions[] = {"snappy", "none", "zstd", "lz4"};
  options.compression = kCompressions[state.range(0)];
  state.SetLabel(options.compression);
  auto encoder = codec::MakeEncoder(codec::WireFormat::kParquet, options);
  Check(encoder.status());
  const int64_t bytes = TimedEncodeAll(state, **encoder, batches);
  state.counters["file_bytes_per_row"] =
      static_cast<double>(bytes) / static_cast<double>(state.iterations() * Rows());
  std::string out;
  int n = 0;
  for (const cdc::ChangeBatch& batch : batches) {
    for (const cdc::RelationChanges& changes : batch.relations) {
      auto dump =
          DumpFile(absl::StrCat("parquet-", options.compression, "-", n++, ".parquet").c_str());
      if (dump == nullptr) return;
      out.clear();
      Check((*encoder)->Encode(changes, &out));
      *dump << out;
    }
  }
}
BENCHMARK(BM_Parquet)
    ->DenseRange(0, 3)
    ->Unit(benchmark::kMillisecond)
    ->MeasureProcessCPUTime()
    ->UseRealTime();

}  // namespace
