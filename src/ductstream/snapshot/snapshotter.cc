#include "ductstream/snapshot/snapshotter.h"

#include <libpq-fe.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "ductstream/base/logging.h"
#include "ductstream/base/status.h"
#include "ductstream/postgres/connection.h"
#include "ductstream/postgres/replication.h"
#include "ductstream/postgres/type_codec.h"
#include "ductstream/snapshot/catalog.h"
#include "ductstream/snapshot/copy.h"

namespace ductstream::snapshot {
namespace {

using postgres::Connection;

spdlog::logger& Log() {
  static const auto logger = base::GetLogger("snapshot");
  return *logger;
}

std::string KindName(SnapshotKind kind) {
  switch (kind) {
    case SnapshotKind::kInitial:
      return "initial";
    case SnapshotKind::kOnly:
      return "only";
    case SnapshotKind::kBackfill:
      return "backfill";
  }
  return "?";
}

// What the copier threads hand the writer: a batch of a chunk, or the end of a chunk.
struct WorkItem {
  size_t chunk = 0;  // index into the run's chunks
  // A plain member and a flag rather than std::optional: GCC 12 at -O2 warns (falsely) that the
  // optional's vector may be used uninitialized.
  bool has_batch = false;
  LoadBatch batch;
  bool last = false;  // the chunk is complete (rows/bytes are its totals)
  int64_t rows = 0;
  int64_t bytes = 0;
};

// Copier threads → writer, bounded in bytes (the destinations' pace throttles the copy).
class WorkQueue {
 public:
  explicit WorkQueue(int64_t max_bytes) : max_bytes_(max_bytes) {}

  absl::Status Push(WorkItem item) {
    const int64_t size = item.has_batch ? item.batch.batch.bytes : 0;
    absl::MutexLock l(&mu_);
    mu_.Await(absl::Condition(
        +[](WorkQueue* q) {
          return !q->closed_.ok() || q->bytes_ < q->max_bytes_ || q->items_.empty();
        },
        this));
    if (!closed_.ok()) return closed_;
    bytes_ += size;
    items_.push_back(std::move(item));
    return absl::OkStatus();
  }

  /// nullopt once every producer is done (or the queue was closed) and nothing is left.
  std::optional<WorkItem> Pop() {
    absl::MutexLock l(&mu_);
    mu_.Await(absl::Condition(
        +[](WorkQueue* q) { return !q->items_.empty() || q->producers_ == 0 || !q->closed_.ok(); },
        this));
    if (items_.empty() || !closed_.ok()) return std::nullopt;
    WorkItem item = std::move(items_.front());
    items_.pop_front();
    bytes_ -= item.has_batch ? item.batch.batch.bytes : 0;
    return item;
  }

  void AddProducer() {
    absl::MutexLock l(&mu_);
    ++producers_;
  }
  void ProducerDone(absl::Status status) {
    absl::MutexLock l(&mu_);
    --producers_;
    if (!status.ok() && first_error_.ok()) first_error_ = status;
    if (!status.ok() && closed_.ok()) closed_ = status;
  }
  /// Fails every Push and ends Pop (writer error or stop).
  void Close(absl::Status why) {
    absl::MutexLock l(&mu_);
    if (closed_.ok()) closed_ = std::move(why);
  }
  absl::Status first_error() {
    absl::MutexLock l(&mu_);
    return first_error_;
  }

 private:
  absl::Mutex mu_;
  const int64_t max_bytes_;
  std::deque<WorkItem> items_ ABSL_GUARDED_BY(mu_);
  int64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  int producers_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status closed_ ABSL_GUARDED_BY(mu_);
  absl::Status first_error_ ABSL_GUARDED_BY(mu_);
};

// A connection inside the snapshot's REPEATABLE READ transaction, with its type resolver.
struct SnapshotConnection {
  std::unique_ptr<Connection> conn;
  std::unique_ptr<postgres::TypeResolver> resolver;
};

absl::StatusOr<SnapshotConnection> OpenInSnapshot(const std::string& dsn,
                                                  const std::string& snapshot_name) {
  SnapshotConnection c;
  DS_ASSIGN_OR_RETURN(c.conn, Connection::Connect(dsn));
  DS_RETURN_IF_ERROR(c.conn->Exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").status());
  if (!snapshot_name.empty()) {
    // SET TRANSACTION SNAPSHOT takes no bind parameters (SPEC.md §5.9's quirk): the name is
    // inlined as a literal, escaped by libpq.
    char* literal = PQescapeLiteral(c.conn->raw(), snapshot_name.data(), snapshot_name.size());
    if (literal == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("snapshot name: ", PQerrorMessage(c.conn->raw())));
    }
    const std::string statement = absl::StrCat("SET TRANSACTION SNAPSHOT ", literal);
    PQfreemem(literal);
    DS_RETURN_IF_ERROR(c.conn->Exec(statement).status());
  }
  c.resolver = postgres::TypeResolver::Create(*c.conn);
  return c;
}

// `count` connections sharing one fresh snapshot (the first exports it), or each with its own
// when `consistent` is false.
absl::StatusOr<std::vector<SnapshotConnection>> OpenFreshSnapshot(const std::string& dsn, int count,
                                                                  bool consistent) {
  std::vector<SnapshotConnection> conns;
  DS_ASSIGN_OR_RETURN(SnapshotConnection first, OpenInSnapshot(dsn, ""));
  std::string name;
  if (consistent) {
    DS_ASSIGN_OR_RETURN(name, first.conn->QueryValue("SELECT pg_export_snapshot()"));
  }
  conns.push_back(std::move(first));
  for (int i = 1; i < count; ++i) {
    DS_ASSIGN_OR_RETURN(SnapshotConnection c, OpenInSnapshot(dsn, name));
    conns.push_back(std::move(c));
  }
  return conns;
}

struct SlotInfo {
  bool exists = false;
  Lsn confirmed_flush;
};

absl::StatusOr<SlotInfo> LookUpSlot(Connection& sql, const std::string& slot) {
  const std::vector<std::optional<std::string>> p = {slot};
  DS_ASSIGN_OR_RETURN(
      postgres::Result r,
      sql.ExecParams("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = $1",
                     p));
  SlotInfo info;
  if (postgres::RowCount(r) == 0) return info;
  info.exists = true;
  if (auto lsn = postgres::GetValue(r, 0, 0)) {
    DS_ASSIGN_OR_RETURN(info.confirmed_flush, Lsn::Parse(*lsn));
  }
  return info;
}

std::string HumanBytes(double b) {
  if (b >= 1e9) return absl::StrFormat("%.2f GB", b / 1e9);
  if (b >= 1e6) return absl::StrFormat("%.1f MB", b / 1e6);
  return absl::StrFormat("%.0f kB", b / 1e3);
}

// Per-table progress: durable rows and bytes against the plan's estimates.
class Progress {
 public:
  Progress(const SnapshotRun& run, absl::Duration interval)
      : interval_(interval), tty_(::isatty(STDERR_FILENO) == 1), start_(absl::Now()) {
    for (TableProgress& t : SummarizeByTable(run)) tables_[t.table] = t;
    last_ = start_;
  }

  void AddBatch(const std::string& table, int64_t rows, int64_t bytes) {
    TableProgress& t = tables_[table];
    t.rows_done += rows;
    t.bytes_done += bytes;
    t.rows_total = std::max(t.rows_total, t.rows_done);
    t.bytes_total = std::max(t.bytes_total, t.bytes_done);
    rows_this_run_ += rows;
    bytes_this_run_ += bytes;
  }
  void ChunkDone(const std::string& table) {
    TableProgress& t = tables_[table];
    if (++t.chunks_done == t.chunks_total) {  // estimates give way to the real totals
      t.rows_total = t.rows_done;
      t.bytes_total = t.bytes_done;
    }
  }

  void MaybeReport(bool final) {
    const absl::Time now = absl::Now();
    if (!final && now - last_ < interval_) return;
    last_ = now;
    const double secs = std::max(1e-3, absl::ToDoubleSeconds(now - start_));
    const double byte_rate = static_cast<double>(bytes_this_run_) / secs;
    const double row_rate = static_cast<double>(rows_this_run_) / secs;
    double all_done = 0, all_total = 0;
    for (const auto& [name, t] : tables_) {
      // Rows when the table was analysed (reltuples is a good estimate); otherwise bytes, whose
      // estimate (heap size) only approximates the COPY stream's size.
      const bool by_rows = t.rows_total > 0;
      const double done = by_rows ? t.rows_done : t.bytes_done;
      const double total =
          std::max(done, static_cast<double>(by_rows ? t.rows_total : t.bytes_total));
      const double rate = by_rows ? row_rate : byte_rate;
      all_done += total > 0 ? done / total : 1.0;
      all_total += 1.0;
      if (tty_ && !final) continue;  // the bar below replaces per-table lines on a terminal
      if (!final && t.chunks_done == t.chunks_total) continue;
      const double pct = total > 0 ? 100.0 * done / total : 100.0;
      const double eta = rate > 0 ? (total - done) / rate : 0;
      Log().info("snapshot {}: {:.0f}% ({} of ~{} rows, {} of ~{}, chunks {}/{}){}", name,
                 std::min(pct, 100.0), t.rows_done, t.rows_total, HumanBytes(t.bytes_done),
                 HumanBytes(t.bytes_total), t.chunks_done, t.chunks_total,
                 t.chunks_done == t.chunks_total
                     ? ""
                     : absl::StrFormat(", ETA %.0f s", std::max(0.0, eta)));
    }
    const double rate = row_rate;
    if (tty_) {
      const double pct = all_total > 0 ? 100.0 * all_done / all_total : 100.0;
      const int filled = static_cast<int>(std::min(100.0, pct) / 5);
      std::fprintf(stderr, "\r[%-20s] %3.0f%%  %lld rows  %.0f rows/s  %s/s%s",
                   std::string(filled, '#').c_str(), std::min(100.0, pct),
                   static_cast<long long>(rows_this_run_), rate, HumanBytes(byte_rate).c_str(),
                   final ? "\n" : "   ");
      std::fflush(stderr);
    } else if (!final) {
      Log().info("snapshot: {} rows copied, {:.0f} rows/s, {}/s", rows_this_run_, rate,
                 HumanBytes(byte_rate));
    }
  }

  int64_t rows_this_run() const { return rows_this_run_; }

 private:
  absl::Duration interval_;
  bool tty_;
  absl::Time start_, last_;
  std::map<std::string, TableProgress> tables_;
  int64_t rows_this_run_ = 0;
  int64_t bytes_this_run_ = 0;
};

class Snapshotter {
 public:
  Snapshotter(const SnapshotConfig& config, std::span<runner::Destination* const> destinations,
              SnapshotState& state, const std::atomic<bool>& stop)
      : config_(config), destinations_(destinations), state_(state), stop_(stop) {}

  // One attempt: plans or resumes, then copies what is not done.
  absl::StatusOr<SnapshotOutcome> Attempt() {
    SnapshotOutcome outcome;
    const std::string key = SnapshotStateKey(config_.flow, config_.kind);
    DS_ASSIGN_OR_RETURN(auto sql, Connection::Connect(config_.dsn));
    DS_ASSIGN_OR_RETURN(std::optional<SnapshotRun> stored, state_.Load(key));
    std::vector<SnapshotConnection> conns;
    SnapshotRun run;
    const int workers = std::max(1, config_.workers);

    if (config_.kind == SnapshotKind::kInitial) {
      DS_ASSIGN_OR_RETURN(SlotInfo slot, LookUpSlot(*sql, config_.slot));
      if (!slot.exists) {
        if (!config_.create_slot) return outcome;  // the stream reports the missing slot
        if (stored.has_value() && stored->status != RunStatus::kDone) {
          Log().warn(
              "flow {}: the slot {} of an unfinished initial snapshot is gone; starting "
              "the snapshot again",
              config_.flow.value(), config_.slot);
        }
        if (config_.ensure_publication) {
          DS_RETURN_IF_ERROR(postgres::EnsurePublication(
              *sql, config_.publication, config_.publication_tables, config_.publication_schemas));
        }
        // Recorded before the slot exists: a crash between the two resumes the snapshot rather
        // than streaming without it.
        run = SnapshotRun{key, "initial", RunStatus::kPlanning, Lsn(), {}, 0};
        DS_RETURN_IF_ERROR(state_.Save(run));
        DS_ASSIGN_OR_RETURN(auto repl,
                            Connection::Connect(config_.dsn, Connection::Mode::kReplication));
        auto created =
            repl->Exec(absl::StrCat("CREATE_REPLICATION_SLOT ", postgres::QuoteIdent(config_.slot),
                                    " LOGICAL pgoutput EXPORT_SNAPSHOT"));
        if (!created.ok()) {
          return base::Annotate(created.status(),
                                absl::StrCat("creating replication slot ", config_.slot));
        }
        DS_ASSIGN_OR_RETURN(run.lsn, Lsn::Parse(postgres::GetValue(*created, 0, 1).value_or("")));
        const std::string name(postgres::GetValue(*created, 0, 2).value_or(""));
        Log().info("flow {}: created replication slot {} at {} with snapshot {}",
                   config_.flow.value(), config_.slot, run.lsn.ToString(), name);
        // The exported snapshot lives until the exporting connection runs another command;
        // every copier imports it first.
        for (int i = 0; i < workers; ++i) {
          DS_ASSIGN_OR_RETURN(SnapshotConnection c, OpenInSnapshot(config_.dsn, name));
          conns.push_back(std::move(c));
        }
        repl.reset();
      } else if (stored.has_value() && stored->status != RunStatus::kDone) {
        run = std::move(*stored);
        // Planned before the slot was created but never copied: the slot has not moved since
        // its creation, so its position is the consistent point.
        if (!run.lsn.valid()) run.lsn = slot.confirmed_flush;
        DS_ASSIGN_OR_RETURN(conns, OpenFreshSnapshot(config_.dsn, workers, true));
      } else {
        return outcome;  // an existing slot: nothing to copy
      }
    } else {
      const bool resumable =
          stored.has_value() && stored->status != RunStatus::kDone &&
          (config_.kind != SnapshotKind::kBackfill || stored->kind == TablesKey());
      if (resumable) {
        run = std::move(*stored);
      } else {
        run = SnapshotRun{key,
                          config_.kind == SnapshotKind::kBackfill ? TablesKey() : "only",
                          RunStatus::kPlanning,
                          Lsn(),
                          {},
                          0};
        // Read before the snapshot: every change committed before this position is in it.
        DS_ASSIGN_OR_RETURN(std::string lsn, sql->QueryValue("SELECT pg_current_wal_lsn()"));
        DS_ASSIGN_OR_RETURN(run.lsn, Lsn::Parse(lsn));
      }
      DS_ASSIGN_OR_RETURN(conns, OpenFreshSnapshot(config_.dsn, workers, config_.consistent));
    }

    // The tables as of the snapshot.
    std::vector<CopyTable> tables;
    if (config_.kind == SnapshotKind::kBackfill) {
      bool via_root = true;
      if (!config_.publication.empty()) {
        const std::vector<std::optional<std::string>> p = {config_.publication};
        auto r = conns[0].conn->ExecParams(
            "SELECT pubviaroot FROM pg_publication WHERE pubname = $1", p);
        if (r.ok() && postgres::RowCount(*r) == 1) {
          via_root = postgres::GetValue(*r, 0, 0).value_or("f") == "t";
        }
      }
      DS_ASSIGN_OR_RETURN(tables,
                          NamedTables(*conns[0].conn, config_.tables, config_.schemas, via_root));
    } else {
      DS_ASSIGN_OR_RETURN(tables, PublishedTables(*conns[0].conn, config_.publication));
    }
    std::erase_if(tables, [&](const CopyTable& t) {
      const std::string label = absl::StrCat(t.label_schema, ".", t.label_table);
      return std::find(config_.excluded_tables.begin(), config_.excluded_tables.end(), label) !=
             config_.excluded_tables.end();
    });
    if (run.status == RunStatus::kPlanning || run.chunks.empty()) {
      PlanOptions plan;
      plan.workers = workers;
      plan.chunk_bytes = config_.chunk_bytes;
      plan.partition_column = config_.partition_column;
      plan.partition_count = config_.partition_count;
      DS_ASSIGN_OR_RETURN(std::string block, conns[0].conn->QueryValue("SHOW block_size"));
      (void)absl::SimpleAtoi(block, &plan.block_size);
      run.chunks = PlanChunks(tables, plan);
      run.status = RunStatus::kCopying;
      DS_RETURN_IF_ERROR(state_.Save(run));
      Log().info(
          "flow {}: {} snapshot of {} table{} in {} chunks with {} worker{}, rows labelled "
          "{}",
          config_.flow.value(), KindName(config_.kind), tables.size(),
          tables.size() == 1 ? "" : "s", run.chunks.size(), workers, workers == 1 ? "" : "s",
          run.lsn.ToString());
    } else {
      Log().info(
          "flow {}: resuming the {} snapshot: {} of {} chunks are durable; the rest is "
          "copied under a new snapshot",
          config_.flow.value(), KindName(config_.kind), run.chunks_done(), run.chunks.size());
    }
    outcome.ran = true;
    outcome.chunks_already_done = run.chunks_done();
    DS_RETURN_IF_ERROR(Copy(run, tables, conns, outcome));
    if (outcome.completed) {
      DS_RETURN_IF_ERROR(state_.SetStatus(key, RunStatus::kDone));
      Log().info(
          "flow {}: {} snapshot complete: {} rows in this run, {} chunks copied, {} were "
          "already durable",
          config_.flow.value(), KindName(config_.kind), outcome.rows, outcome.chunks_copied,
          outcome.chunks_already_done);
    }
    return outcome;
  }

 private:
  // A backfill resumes only the run of the same table selection.
  std::string TablesKey() const {
    return absl::StrCat("backfill:", absl::StrJoin(config_.tables, ","), ":",
                        absl::StrJoin(config_.schemas, ","));
  }

  absl::Status Copy(SnapshotRun& run, const std::vector<CopyTable>& tables,
                    std::vector<SnapshotConnection>& conns, SnapshotOutcome& outcome) {
    std::map<std::string, const CopyTable*> by_name;
    for (const CopyTable& t : tables) by_name[t.name] = &t;
    std::vector<size_t> todo;
    for (size_t i = 0; i < run.chunks.size(); ++i) {
      if (run.chunks[i].done) continue;
      if (!by_name.contains(run.chunks[i].table)) {
        Log().warn("snapshot: table {} is no longer part of the flow; skipping its chunk {}",
                   run.chunks[i].table, run.chunks[i].index);
        continue;
      }
      todo.push_back(i);
    }
    Progress progress(run, config_.progress_interval);
    WorkQueue queue(config_.max_inflight_bytes);
    std::atomic<size_t> next{0};
    ChunkCopyOptions copy_options;
    copy_options.snapshot_lsn = run.lsn;
    copy_options.batch_rows = config_.batch_rows;
    copy_options.max_batch_bytes = config_.max_batch_bytes;

    std::vector<std::thread> threads;
    const size_t nthreads = std::min(conns.size(), std::max<size_t>(1, todo.size()));
    for (size_t w = 0; w < nthreads; ++w) queue.AddProducer();
    for (size_t w = 0; w < nthreads; ++w) {
      threads.emplace_back([&, w] {
        absl::Status status;
        SnapshotConnection& sc = conns[w];
        const postgres::TypeLookup lookup = sc.resolver->AsLookup();
        for (size_t k; status.ok() && (k = next.fetch_add(1)) < todo.size();) {
          const size_t idx = todo[k];
          const Chunk& chunk = run.chunks[idx];
          int64_t rows = 0, bytes = 0;
          ChunkCopyOptions options = copy_options;
          options.seq_base = ChunkSeqBase(idx);
          status = CopyChunk(
              *sc.conn, lookup, *by_name.at(chunk.table), chunk, options,
              [&](LoadBatch b) {
                return queue.Push(WorkItem{idx, true, std::move(b), false, 0, 0});
              },
              stop_, &rows, &bytes);
          if (status.ok()) status = queue.Push(WorkItem{idx, false, {}, true, rows, bytes});
        }
        queue.ProducerDone(status);
      });
    }

    absl::Status writer;
    while (auto item = queue.Pop()) {
      if (stop_.load()) break;
      Chunk& chunk = run.chunks[item->chunk];
      if (item->has_batch) {
        const cdc::ChangeBatch& batch = item->batch.batch;
        for (runner::Destination* d : destinations_) {
          writer = d->Write(batch);
          if (!writer.ok()) {
            writer = base::Annotate(writer, absl::StrCat("destination ", d->name()));
            break;
          }
        }
        if (!writer.ok()) break;
        progress.AddBatch(chunk.table, batch.num_rows(), item->batch.copy_bytes);
      }
      if (item->last) {
        chunk.done = true;
        chunk.rows = item->rows;
        chunk.bytes = item->bytes;
        writer = state_.MarkChunkDone(run.key, chunk);
        if (!writer.ok()) break;
        progress.ChunkDone(chunk.table);
        ++outcome.chunks_copied;
      }
      progress.MaybeReport(false);
    }
    queue.Close(writer.ok() ? absl::CancelledError("snapshot stopped") : writer);
    for (auto& t : threads) t.join();
    outcome.rows = progress.rows_this_run();
    progress.MaybeReport(true);
    DS_RETURN_IF_ERROR(writer);
    if (stop_.load()) return absl::OkStatus();  // completed stays false
    absl::Status copiers = queue.first_error();
    if (!copiers.ok() && !absl::IsCancelled(copiers)) return copiers;
    outcome.completed = outcome.chunks_copied == static_cast<int64_t>(todo.size());
    return absl::OkStatus();
  }

  const SnapshotConfig& config_;
  std::span<runner::Destination* const> destinations_;
  SnapshotState& state_;
  const std::atomic<bool>& stop_;
};

}  // namespace

std::string SnapshotStateKey(const FlowId& flow, SnapshotKind kind) {
  return kind == SnapshotKind::kBackfill ? absl::StrCat(flow.value(), "/backfill") : flow.value();
}

absl::StatusOr<SnapshotOutcome> RunSnapshot(const SnapshotConfig& config,
                                            std::span<runner::Destination* const> destinations,
                                            SnapshotState& state, const std::atomic<bool>& stop) {
  Snapshotter snapshotter(config, destinations, state, stop);
  absl::Duration backoff = absl::Milliseconds(500);
  for (;;) {
    absl::StatusOr<SnapshotOutcome> outcome = snapshotter.Attempt();
    if (outcome.ok() || !base::IsRetriable(outcome.status()) || stop.load()) return outcome;
    Log().warn("flow {}: snapshot interrupted ({}); resuming in {}", config.flow.value(),
               outcome.status().ToString(), absl::FormatDuration(backoff));
    for (absl::Time until = absl::Now() + backoff; absl::Now() < until && !stop.load();) {
      absl::SleepFor(absl::Milliseconds(50));
    }
    backoff = std::min(backoff * 2, absl::Seconds(30));
  }
}

}  // namespace ductstream::snapshot
