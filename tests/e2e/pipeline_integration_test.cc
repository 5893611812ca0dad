// The data path (pgoutput → batches → destination → checkpoint) against a real PostgreSQL.
// Destinations here are in-memory recorders: the point is what arrives and when the checkpoint
// may move (one test checks Arrow files staged before their commit against a recorder). File
// formats are otherwise tested through the worker binary in worker_integration_test.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <arrow/io/file.h>
#include <arrow/ipc/reader.h>
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

#include "ductstream/cdc/change_batch.h"
#include "ductstream/destination/file_destination.h"
#include "ductstream/postgres/connection.h"
#include "ductstream/runner/pipeline.h"
#include "ductstream/store/checkpoint_store.h"
#include "ductstream/testing/helpers.h"
#include "ductstream/testing/pg_sandbox.h"

namespace ductstream {
namespace {

using postgres::Connection;

// One change rendered as "schema.table op [before] after" with Arrow's scalar formatting.
struct Recorded {
  std::string table;
  std::string op;
  std::string after;      // "id=1,name=a"
  std::string before;     // "" when there is no before image
  std::string unchanged;  // comma-separated
  uint64_t commit_lsn = 0;
  int64_t seq = 0;
};

std::string RenderRow(const arrow::StructArray* s, const arrow::RecordBatch* rb, int64_t row,
                      int first) {
  std::vector<std::string> cells;
  const int n = s != nullptr ? s->num_fields() : rb->num_columns() - first;
  for (int c = 0; c < n; ++c) {
    auto array = s != nullptr ? s->field(c) : rb->column(first + c);
    const std::string name =
        s != nullptr ? s->type()->field(c)->name() : rb->schema()->field(first + c)->name();
    auto scalar = array->GetScalar(row);
    cells.push_back(absl::StrCat(
        name, "=", scalar.ok() && (*scalar)->is_valid ? (*scalar)->ToString() : "NULL"));
  }
  return absl::StrJoin(cells, ",");
}

class RecordingDestination : public runner::Destination {
 public:
  struct Shared {
    absl::Mutex mu;
    std::vector<Recorded> rows;
    std::vector<cdc::ChangeBatch> batches;
    int fail_after_batches = -1;  // fail every Write once this many batches were written
  };
  explicit RecordingDestination(Shared* shared) : shared_(shared) {}
  const std::string& name() const override { return name_; }
  absl::Status Write(const cdc::ChangeBatch& batch) override {
    absl::MutexLock lock(&shared_->mu);
    if (shared_->fail_after_batches >= 0 &&
        static_cast<int>(shared_->batches.size()) >= shared_->fail_after_batches) {
      return absl::UnavailableError("injected destination failure");
    }
    shared_->batches.push_back(batch);
    for (const auto& rel : batch.relations) {
      const auto& rb = *rel.records;
      auto op = std::static_pointer_cast<arrow::StringArray>(rb.GetColumnByName(cdc::kOpColumn));
      auto before =
          std::static_pointer_cast<arrow::StructArray>(rb.GetColumnByName(cdc::kBeforeColumn));
      auto unchanged =
          std::static_pointer_cast<arrow::ListArray>(rb.GetColumnByName(cdc::kUnchangedColumn));
      auto commit =
          std::static_pointer_cast<arrow::UInt64Array>(rb.GetColumnByName(cdc::kCommitLsnColumn));
      auto seq = std::static_pointer_cast<arrow::Int64Array>(rb.GetColumnByName(cdc::kSeqColumn));
      for (int64_t r = 0; r < rb.num_rows(); ++r) {
        Recorded rec;
        rec.table = rel.QualifiedName();
        rec.op = std::string(op->GetView(r));
        rec.after = RenderRow(nullptr, &rb, r, cdc::kMetadataColumnCount);
        if (before->IsValid(r)) rec.before = RenderRow(before.get(), &rb, r, 0);
        auto names = std::static_pointer_cast<arrow::StringArray>(unchanged->value_slice(r));
        std::vector<std::string> u;
        for (int64_t i = 0; i < names->length(); ++i) u.emplace_back(names->GetView(i));
        rec.unchanged = absl::StrJoin(u, ",");
        rec.commit_lsn = commit->Value(r);
        rec.seq = seq->Value(r);
        shared_->rows.push_back(std::move(rec));
      }
    }
    return absl::OkStatus();
  }

 private:
  Shared* shared_;
  std::string name_ = "recorder";
};

// Prepares (here: renders) batches on the pipeline's threads, finishing in a scrambled order,
// and checks that WritePrepared receives each batch's own preparation, in batch order.
class PreparingDestination : public RecordingDestination {
 public:
  struct Rendered : runner::Prepared {
    const cdc::ChangeBatch* batch;
    int64_t rows;
  };
  using RecordingDestination::RecordingDestination;
  bool prepares() const override { return true; }
  absl::StatusOr<std::unique_ptr<runner::Prepared>> Prepare(
      const cdc::ChangeBatch& batch) override {
    prepared_.fetch_add(1);
    absl::SleepFor(absl::Milliseconds(std::hash<const void*>()(&batch) % 13));
    for (const auto& rel : batch.relations) {
      auto id = std::static_pointer_cast<arrow::Int32Array>(rel.records->GetColumnByName("id"));
      for (int64_t r = 0; r < id->length(); ++r) {
        if (id->Value(r) == fail_on_id) return absl::DataLossError("injected prepare failure");
      }
    }
    auto out = std::make_unique<Rendered>();
    out->batch = &batch;
    out->rows = batch.num_rows();
    return out;
  }
  absl::Status WritePrepared(const cdc::ChangeBatch& batch,
                             std::unique_ptr<runner::Prepared> prepared) override {
    auto* rendered = dynamic_cast<Rendered*>(prepared.get());
    if (rendered == nullptr || rendered->batch != &batch || rendered->rows != batch.num_rows()) {
      return absl::InternalError("WritePrepared got another batch's preparation");
    }
    return Write(batch);
  }
  int fail_on_id = -1;
  static inline std::atomic<int> prepared_{0};
};

// A pipeline running on a thread of its own until Stop().
class RunningPipeline {
 public:
  RunningPipeline(const runner::PipelineOptions& options,
                  std::unique_ptr<runner::Destination> destination, store::CheckpointStore* store)
      : pipeline_(options, OneDestination(std::move(destination)), store),
        thread_([this] { result_ = pipeline_.Run(stop_); }) {}
  ~RunningPipeline() { (void)Stop(); }

  /// Stops the pipeline (gracefully) and returns what Run returned.
  absl::Status Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    return result_;
  }
  const runner::PipelineStats& stats() const { return pipeline_.stats(); }

 private:
  static std::vector<std::unique_ptr<runner::Destination>> OneDestination(
      std::unique_ptr<runner::Destination> d) {
    std::vector<std::unique_ptr<runner::Destination>> out;
    out.push_back(std::move(d));
    return out;
  }

  runner::Pipeline pipeline_;
  std::atomic<bool> stop_{false};
  absl::Status result_;
  std::thread thread_;  // last: starts once the members it uses exist
};

class PipelineTest : public testing::PostgresTest {
 protected:
  void SetUp() override {
    testing::PostgresTest::SetUp();
    if (HasFatalFailure() || IsSkipped()) return;
    auto db = pg().CreateDatabase("pipe");
    ASSERT_TRUE(db.ok()) << db.status();
    db_ = *db;
    auto sql = Connection::Connect(pg().Dsn(db_));
    ASSERT_TRUE(sql.ok()) << sql.status();
    sql_ = std::move(*sql);
    store_path_ =
        absl::StrCat(::testing::TempDir(), "/", testing::PgSandbox::UniqueName("cp"), ".db");
    auto store = store::OpenSqliteCheckpointStore(store_path_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
    options_.flow = FlowId(testing::PgSandbox::UniqueName("flow"));
    options_.source.dsn = pg().Dsn(db_);
    options_.source.slot = testing::PgSandbox::UniqueName("slot");
    options_.source.publication = "pub";
    options_.source.batch_timeout = absl::Milliseconds(200);
    options_.source.status_interval = absl::Milliseconds(500);
  }

  void TearDown() override {
    if (sql_ != nullptr) {
      (void)sql_->Exec(absl::StrCat("SELECT pg_drop_replication_slot('", options_.source.slot,
                                    "') FROM pg_replication_slots WHERE slot_name = '",
                                    options_.source.slot, "' AND NOT active"));
    }
    store_.reset();
    if (!store_path_.empty()) {
      std::error_code ec;
      for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
        std::filesystem::remove(store_path_ + suffix, ec);
      }
    }
  }

  void Sql(absl::string_view statement) {
    auto r = sql_->Exec(statement);
    ASSERT_TRUE(r.ok()) << statement << ": " << r.status();
  }

  // Creates the slot (and publication) by running the pipeline until it stops on empty reads.
  absl::Status RunUntilIdle(RecordingDestination::Shared& shared, int empty_reads = 3) {
    runner::PipelineOptions options = options_;
    options.max_empty_reads = empty_reads;
    std::vector<std::unique_ptr<runner::Destination>> dests;
    dests.push_back(std::make_unique<RecordingDestination>(&shared));
    runner::Pipeline pipeline(options, std::move(dests), store_.get());
    std::atomic<bool> stop{false};
    return pipeline.Run(stop);
  }

  // Every change recorded, in transaction order ((commit_lsn, seq): a batch groups rows by
  // relation, so rows of different tables are not interleaved within one batch).
  std::vector<std::string> Rows(RecordingDestination::Shared& shared) {
    absl::MutexLock lock(&shared.mu);
    std::vector<Recorded> rows = shared.rows;
    std::stable_sort(rows.begin(), rows.end(), [](const Recorded& a, const Recorded& b) {
      return std::tie(a.commit_lsn, a.seq) < std::tie(b.commit_lsn, b.seq);
    });
    std::vector<std::string> out;
    for (const auto& r : rows) {
      std::string line = absl::StrCat(r.table, " ", r.op, " ", r.after);
      if (!r.before.empty()) absl::StrAppend(&line, " before(", r.before, ")");
      if (!r.unchanged.empty()) absl::StrAppend(&line, " unchanged(", r.unchanged, ")");
      out.push_back(line);
    }
    return out;
  }

  void CheckStreamedTransactions(bool speculative);

  std::string ConfirmedFlush() {
    auto v = sql_->QueryValue(
        absl::StrCat("SELECT confirmed_flush_lsn FROM pg_replication_slots WHERE slot_name = '",
                     options_.source.slot, "'"));
    return v.ok() ? *v : v.status().ToString();
  }

  std::string db_;
  std::unique_ptr<Connection> sql_;
  std::string store_path_;
  std::unique_ptr<store::CheckpointStore> store_;
  runner::PipelineOptions options_;
};

TEST_F(PipelineTest, DeliversEveryOperationWithBeforeImagesAndCheckpoints) {
  Sql("CREATE TABLE items (id int PRIMARY KEY, name text, big text)");
  Sql("ALTER TABLE items ALTER big SET STORAGE EXTERNAL");
  Sql("CREATE TABLE full_items (id int PRIMARY KEY, name text)");
  Sql("ALTER TABLE full_items REPLICA IDENTITY FULL");
  Sql("CREATE TABLE idx_items (id int NOT NULL, code text NOT NULL, note text)");
  Sql("CREATE UNIQUE INDEX idx_items_code ON idx_items (code)");
  Sql("ALTER TABLE idx_items REPLICA IDENTITY USING INDEX idx_items_code");
  RecordingDestination::Shared shared;
  ASSERT_TRUE(RunUntilIdle(shared, 1).ok());  // creates slot and publication
  Sql("INSERT INTO items VALUES (1, 'a', repeat('x', 3000)), (2, 'b', NULL)");
  Sql("UPDATE items SET name = 'a2' WHERE id = 1");  // big stays TOASTed: unchanged
  Sql("UPDATE items SET id = 3 WHERE id = 2");       // key change: old key sent
  Sql("DELETE FROM items WHERE id = 1");             // default identity: key only
  Sql("BEGIN; INSERT INTO items VALUES (9, 'never', NULL); ROLLBACK");
  Sql("INSERT INTO full_items VALUES (1, 'x')");
  Sql("UPDATE full_items SET name = 'y'");
  Sql("DELETE FROM full_items");
  Sql("INSERT INTO idx_items VALUES (1, 'c1', 'n')");
  Sql("UPDATE idx_items SET note = 'm'");
  Sql("DELETE FROM idx_items");
  Sql("TRUNCATE items");
  ASSERT_TRUE(RunUntilIdle(shared).ok());

  const std::string big = std::string(3000, 'x');
  EXPECT_EQ(Rows(shared),
            (std::vector<std::string>{
                absl::StrCat("public.items insert id=1,name=a,big=", big),
                "public.items insert id=2,name=b,big=NULL",
                "public.items update id=1,name=a2,big=NULL unchanged(big)",
                "public.items update id=3,name=b,big=NULL before(id=2,name=NULL,big=NULL)",
                "public.items delete id=NULL,name=NULL,big=NULL before(id=1,name=NULL,big=NULL)",
                "public.full_items insert id=1,name=x",
                "public.full_items update id=1,name=y before(id=1,name=x)",
                "public.full_items delete id=NULL,name=NULL before(id=1,name=y)",
                "public.idx_items insert id=1,code=c1,note=n",
                "public.idx_items update id=1,code=c1,note=m",
                "public.idx_items delete id=NULL,code=NULL,note=NULL "
                "before(id=NULL,code=c1,note=NULL)",
                "public.items truncate id=NULL,name=NULL,big=NULL",
            }));
  // The checkpoint is the last commit's end, and the slot was acknowledged up to it.
  auto cp = store_->Get(options_.flow);
  ASSERT_TRUE(cp.ok()) << cp.status();
  auto current = sql_->QueryValue("SELECT pg_current_wal_lsn()");
  ASSERT_TRUE(current.ok());
  EXPECT_LE(cp->lsn, *Lsn::Parse(*current));
  EXPECT_EQ(ConfirmedFlush(), cp->lsn.ToString());

  // Nothing new: a second run delivers nothing (no duplicates after a clean stop).
  RecordingDestination::Shared again;
  ASSERT_TRUE(RunUntilIdle(again).ok());
  EXPECT_TRUE(Rows(again).empty()) << absl::StrJoin(Rows(again), "\n");
}

TEST_F(PipelineTest, ConcurrentWritersArriveInCommitOrderWithIdentity) {
  Sql("CREATE TABLE t (writer int, n int, PRIMARY KEY (writer, n))");
  RecordingDestination::Shared shared;
  ASSERT_TRUE(RunUntilIdle(shared, 1).ok());
  std::vector<std::thread> writers;
  for (int w = 0; w < 4; ++w) {
    writers.emplace_back([&, w] {
      auto conn = Connection::Connect(pg().Dsn(db_));
      ASSERT_TRUE(conn.ok());
      for (int n = 0; n < 200; ++n) {
        auto r = (*conn)->Exec(absl::StrCat("INSERT INTO t VALUES (", w, ",", n, ")"));
        ASSERT_TRUE(r.ok()) << r.status();
      }
    });
  }
  for (auto& t : writers) t.join();
  ASSERT_TRUE(RunUntilIdle(shared).ok());
  absl::MutexLock lock(&shared.mu);
  ASSERT_EQ(shared.rows.size(), 800u);
  std::set<std::pair<uint64_t, int64_t>> ids;
  for (size_t i = 1; i < shared.rows.size(); ++i) {
    // Commit order: commit LSNs never decrease.
    EXPECT_LE(shared.rows[i - 1].commit_lsn, shared.rows[i].commit_lsn);
  }
  for (const auto& r : shared.rows) ids.insert({r.commit_lsn, r.seq});
  EXPECT_EQ(ids.size(), 800u) << "(commit_lsn, seq) must identify every change";
}

TEST_F(PipelineTest, LargeTransactionSpansBatchesAndOnlyTheLastMovesTheCheckpoint) {
  Sql("CREATE TABLE wide (id int PRIMARY KEY, payload text)");
  RecordingDestination::Shared shared;
  ASSERT_TRUE(RunUntilIdle(shared, 1).ok());
  Sql("INSERT INTO wide VALUES (0, 'before')");
  Sql("INSERT INTO wide SELECT g, repeat('p', 200) FROM generate_series(1, 20000) g");
  options_.source.max_batch_bytes = 256 << 10;  // ~1000 rows per batch
  ASSERT_TRUE(RunUntilIdle(shared).ok());
  absl::MutexLock lock(&shared.mu);
  EXPECT_EQ(shared.rows.size(), 20001u);
  ASSERT_GT(shared.batches.size(), 5u);
  int with_checkpoint = 0;
  for (size_t i = 0; i < shared.batches.size(); ++i) {
    if (shared.batches[i].checkpoint.valid()) ++with_checkpoint;
  }
  // The small transaction is cut off as its own batch, the big one only checkpoints at its end.
  EXPECT_TRUE(shared.batches.front().checkpoint.valid());
  EXPECT_EQ(shared.batches.front().num_rows(), 1);
  EXPECT_TRUE(shared.batches.back().checkpoint.valid());
  EXPECT_EQ(with_checkpoint, 2);
}

// Streamed transactions (PostgreSQL sends a large transaction before it commits) arrive
// complete, once, in commit order, with what aborted left out, whether they are decoded as they
// stream (speculative) or at Stream Commit.
void PipelineTest::CheckStreamedTransactions(bool speculative) {
  ASSERT_GE(sql_->server_version(), 140000) << "streaming needs PostgreSQL 14";
  Sql("CREATE TABLE s (id int PRIMARY KEY, note text)");
  RecordingDestination::Shared shared;
  // A tiny logical_decoding_work_mem makes the walsender stream; a tiny buffer makes us spill.
  options_.source.dsn += " options='-c logical_decoding_work_mem=64kB'";
  options_.source.stream_buffer_bytes = 16 << 10;
  options_.source.max_batch_bytes = 64 << 10;  // the streamed transaction spans batches
  options_.source.speculative_streams = speculative;
  ASSERT_TRUE(RunUntilIdle(shared, 1).ok());
  Sql("BEGIN;"
      "INSERT INTO s SELECT g, 'keep' FROM generate_series(1, 3000) g;"
      "SAVEPOINT a;"
      "INSERT INTO s SELECT g, 'sub-aborted' FROM generate_series(3001, 6000) g;"
      "ROLLBACK TO SAVEPOINT a;"
      "INSERT INTO s SELECT g, 'keep' FROM generate_series(6001, 8000) g;"
      "COMMIT");
  Sql("BEGIN; INSERT INTO s SELECT g, 'aborted' FROM generate_series(10001, 15000) g; ROLLBACK");
  Sql("INSERT INTO s VALUES (20000, 'after')");

  runner::PipelineOptions options = options_;
  options.max_empty_reads = 3;
  std::vector<std::unique_ptr<runner::Destination>> dests;
  dests.push_back(std::make_unique<RecordingDestination>(&shared));
  runner::Pipeline pipeline(options, std::move(dests), store_.get());
  std::atomic<bool> stop{false};
  ASSERT_TRUE(pipeline.Run(stop).ok());
  EXPECT_GT(pipeline.stats().spilled_bytes.load(), 0) << "the test meant to exercise spilling";

  absl::MutexLock lock(&shared.mu);
  ASSERT_EQ(shared.rows.size(), 5001u);
  for (const auto& r : shared.rows) {
    EXPECT_TRUE(absl::StrContains(r.after, "note=keep") || absl::StrContains(r.after, "note=after"))
        << r.after;
  }
  // The committed transaction: one commit position, __seq 0..4999 in order, as if the aborted
  // subtransaction had never been sent; then the single-row transaction after it.
  for (size_t i = 0; i < 5000; ++i) {
    EXPECT_EQ(shared.rows[i].commit_lsn, shared.rows[0].commit_lsn);
    EXPECT_EQ(shared.rows[i].seq, static_cast<int64_t>(i));
  }
  EXPECT_LT(shared.rows[0].commit_lsn, shared.rows[5000].commit_lsn);
  EXPECT_EQ(shared.rows[5000].seq, 0);
  EXPECT_GT(shared.batches.size(), 2u) << "the transaction was meant to span batches";
  EXPECT_TRUE(shared.batches.back().checkpoint.valid());
}

TEST_F(PipelineTest, StreamedTransactionsDecodedAsTheyStream) { CheckStreamedTransactions(true); }

TEST_F(PipelineTest, StreamedTransactionsBufferedUntilCommit) { CheckStreamedTransactions(false); }

// Arrow files of a streamed transaction are written while it streams and labelled at its commit
// (Destination::Stage): the files hold exactly what was committed, as an in-memory recorder
// beside them received it, and nothing of what aborted is left behind.
TEST_F(PipelineTest, StreamedTransactionsStagedAsArrowFilesBeforeTheirCommit) {
  ASSERT_GE(sql_->server_version(), 140000) << "streaming needs PostgreSQL 14";
  Sql("CREATE TABLE s (id int PRIMARY KEY, note text)");
  RecordingDestination::Shared shared;
  options_.source.dsn += " options='-c logical_decoding_work_mem=64kB'";
  options_.source.stream_buffer_bytes = 16 << 10;
  options_.source.max_batch_bytes = 64 << 10;
  ASSERT_TRUE(RunUntilIdle(shared, 1).ok());
  // Whole: staged. With an aborted subtransaction: its rows are cut out at the commit, so its
  // batches are prepared after the commit instead. Aborted: its staged files are removed.
  Sql("INSERT INTO s SELECT g, repeat('w', 40) FROM generate_series(1, 6000) g");
  Sql("BEGIN;"
      "INSERT INTO s SELECT g, 'keep' FROM generate_series(10001, 13000) g;"
      "SAVEPOINT a;"
      "INSERT INTO s SELECT g, 'sub-aborted' FROM generate_series(13001, 16000) g;"
      "ROLLBACK TO SAVEPOINT a;"
      "COMMIT");
  Sql("BEGIN; INSERT INTO s SELECT g, 'aborted' FROM generate_series(20001, 26000) g; ROLLBACK");
  Sql("INSERT INTO s VALUES (30000, 'after')");

  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / testing::PgSandbox::UniqueName("staged");
  destination::FileDestinationConfig config;
  config.name = "files";
  config.path = dir.string();
  config.format = codec::WireFormat::kArrow;
  auto files = destination::MakeFileDestination(config);
  ASSERT_TRUE(files.ok()) << files.status();
  runner::PipelineOptions options = options_;
  options.max_empty_reads = 3;
  options.prepare_ahead = 16;  // a slow (sanitized, loaded) machine still stages most batches
  std::vector<std::unique_ptr<runner::Destination>> dests;
  dests.push_back(std::move(*files));
  dests.push_back(std::make_unique<RecordingDestination>(&shared));
  runner::Pipeline pipeline(options, std::move(dests), store_.get());
  std::atomic<bool> stop{false};
  ASSERT_TRUE(pipeline.Run(stop).ok());
  EXPECT_GE(pipeline.stats().staged_batches.load(), 2) << "the test meant to exercise staging";

  // Read the files back through the recorder's own rendering.
  RecordingDestination::Shared from_files;
  RecordingDestination reader(&from_files);
  int file_count = 0;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    EXPECT_FALSE(absl::EndsWith(e.path().string(), ".tmp")) << "left behind: " << e.path();
    ++file_count;
    auto in = arrow::io::ReadableFile::Open(e.path().string());
    ASSERT_TRUE(in.ok()) << in.status();
    auto stream = arrow::ipc::RecordBatchStreamReader::Open(*in);
    ASSERT_TRUE(stream.ok()) << stream.status();
    auto table = (*stream)->ToTable();
    ASSERT_TRUE(table.ok()) << table.status();
    auto combined = (*table)->CombineChunksToBatch();
    ASSERT_TRUE(combined.ok()) << combined.status();
    cdc::ChangeBatch batch;
    cdc::RelationChanges r;
    r.schema = "public";
    r.table = "s";
    r.records = *combined;
    batch.relations.push_back(std::move(r));
    ASSERT_TRUE(reader.Write(batch).ok());
  }
  EXPECT_GT(file_count, 3);
  const std::vector<std::string> expected = Rows(shared);
  ASSERT_EQ(expected.size(), 6000u + 3000 + 1);
  EXPECT_EQ(Rows(from_files), expected);
  {
    // Same commit positions and __seq too (Rows renders the row, not its labels).
    absl::MutexLock a(&shared.mu);
    absl::MutexLock b(&from_files.mu);
    std::multiset<std::pair<uint64_t, int64_t>> want, got;
    for (const auto& r : shared.rows) want.emplace(r.commit_lsn, r.seq);
    for (const auto& r : from_files.rows) got.emplace(r.commit_lsn, r.seq);
    EXPECT_EQ(got, want);
    EXPECT_EQ(want.count({shared.rows.front().commit_lsn, 0}), 1u);
  }
  std::filesystem::remove_all(dir);
}

TEST_F(PipelineTest, DestinationFailureNeverMovesTheCheckpointPastIt) {
  Sql("CREATE TABLE f (id int PRIMARY KEY)");
  RecordingDestination::Shared shared;
  ASSERT_TRUE(RunUntilIdle(shared, 1).ok());
  auto before = store_->Get(options_.flow);
  const Lsn start = before.ok() ? before->lsn : Lsn();
  Sql("INSERT INTO f VALUES (1)");
  Sql("INSERT INTO f VALUES (2)");
  {
    absl::MutexLock lock(&shared.mu);
    shared.fail_after_batches = static_cast<int>(shared.batches.size());  // fail from now on
  }
  absl::Status s = RunUntilIdle(shared);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(absl::StrContains(s.message(), "injected destination failure")) << s;
  auto after = store_->Get(options_.flow);
  const Lsn checkpoint = after.ok() ? after->lsn : Lsn();
  auto confirmed = Lsn::Parse(ConfirmedFlush());
  ASSERT_TRUE(confirmed.ok()) << confirmed.status();

  // Once the destination recovers, both rows arrive.
  {
    absl::MutexLock lock(&shared.mu);
    shared.fail_after_batches = -1;
    shared.rows.clear();
  }
  ASSERT_TRUE(RunUntilIdle(shared).ok());
  EXPECT_EQ(Rows(shared),
            (std::vector<std::string>{"public.f insert id=1", "public.f insert id=2"}));

  // Nothing was checkpointed or acknowledged at or past the commit of the first row the
  // destination refused. (The checkpoint may have moved from `start` before it: an idle
  // advance over other databases' WAL, written by tests running beside this one.)
  uint64_t first_commit = 0;
  {
    absl::MutexLock lock(&shared.mu);
    ASSERT_FALSE(shared.rows.empty());
    first_commit = shared.rows.front().commit_lsn;
  }
  EXPECT_GE(checkpoint, start);
  EXPECT_LT(checkpoint, Lsn(first_commit)) << "checkpointed past a batch the destination refused";
  EXPECT_LE(*confirmed, checkpoint) << "acknowledged past the checkpoint";
}

TEST_F(PipelineTest, PreparedBatchesAreWrittenInOrderAndAFailedPrepareStopsTheFlow) {
  Sql("CREATE TABLE p (id int PRIMARY KEY)");
  options_.source.batch_rows = 40;
  RecordingDestination::Shared shared;
  ASSERT_TRUE(RunUntilIdle(shared, 1).ok());
  for (int t = 0; t < 30; ++t) {
    Sql(absl::StrCat("INSERT INTO p SELECT g FROM generate_series(", t * 25 + 1, ", ", t * 25 + 25,
                     ") g"));
  }
  auto run = [&](int fail_on_id) {
    runner::PipelineOptions options = options_;
    options.max_empty_reads = 3;
    options.prepare_ahead = 3;
    auto dest = std::make_unique<PreparingDestination>(&shared);
    dest->fail_on_id = fail_on_id;
    std::vector<std::unique_ptr<runner::Destination>> dests;
    dests.push_back(std::move(dest));
    runner::Pipeline pipeline(options, std::move(dests), store_.get());
    std::atomic<bool> stop{false};
    return pipeline.Run(stop);
  };
  // A preparation fails (row 500's batch): the batches before it are written, in order, and the
  // checkpoint stays before the failed batch.
  PreparingDestination::prepared_ = 0;
  absl::Status failed = run(500);
  EXPECT_TRUE(absl::StrContains(failed.message(), "injected prepare failure")) << failed;
  {
    absl::MutexLock lock(&shared.mu);
    ASSERT_FALSE(shared.rows.empty());
    EXPECT_LT(shared.rows.size(), 500u);
    for (size_t i = 0; i < shared.rows.size(); ++i) {
      EXPECT_EQ(shared.rows[i].after, absl::StrCat("id=", i + 1));
    }
    EXPECT_EQ(store_->Get(options_.flow)->lsn, shared.batches.back().checkpoint);
    shared.rows.clear();
  }
  // The rest, resumed from the checkpoint, in order and complete, prepared several at a time.
  ASSERT_TRUE(run(-1).ok());
  absl::MutexLock lock(&shared.mu);
  ASSERT_FALSE(shared.rows.empty());
  const int first = std::stoi(shared.rows.front().after.substr(3));
  EXPECT_LE(first, 500);
  ASSERT_EQ(shared.rows.size(), static_cast<size_t>(750 - first + 1));
  for (size_t i = 0; i < shared.rows.size(); ++i) {
    EXPECT_EQ(shared.rows[i].after, absl::StrCat("id=", first + static_cast<int>(i)));
  }
  EXPECT_GT(PreparingDestination::prepared_.load(), 10);
}

TEST_F(PipelineTest, ReconnectsAfterTheWalsenderIsKilledWithoutLossOrDuplicates) {
  Sql("CREATE TABLE r (id int PRIMARY KEY)");
  RecordingDestination::Shared shared;
  ASSERT_TRUE(RunUntilIdle(shared, 1).ok());
  RunningPipeline pipeline(options_, std::make_unique<RecordingDestination>(&shared), store_.get());
  for (int i = 1; i <= 300; ++i) {
    Sql(absl::StrCat("INSERT INTO r VALUES (", i, ")"));
    if (i % 100 == 0) {
      // Kill the walsender only once the pipeline is streaming (it may still be connecting on a
      // loaded machine), so that every kill really interrupts a stream.
      const std::string active =
          absl::StrCat("SELECT count(*) FROM pg_replication_slots WHERE slot_name = '",
                       options_.source.slot, "' AND active");
      ASSERT_TRUE(testing::WaitFor([&] { return sql_->QueryValue(active).value_or("") == "1"; },
                                   absl::Seconds(30)))
          << "the pipeline never started streaming";
      Sql(
          absl::StrCat("SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots "
                       "WHERE slot_name = '",
                       options_.source.slot, "' AND active"));
    }
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline) {
    {
      absl::MutexLock lock(&shared.mu);
      if (shared.rows.size() >= 300) break;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  const absl::Status result = pipeline.Stop();
  ASSERT_TRUE(result.ok()) << result;
  EXPECT_GE(pipeline.stats().reconnects.load(), 1);
  absl::MutexLock lock(&shared.mu);
  std::vector<std::string> ids;
  for (const auto& r : shared.rows) ids.push_back(r.after);
  std::vector<std::string> expected;
  for (int i = 1; i <= 300; ++i) expected.push_back(absl::StrCat("id=", i));
  EXPECT_EQ(ids, expected);
}

// A destination that stalls for several times wal_sender_timeout holds the reader in the
// queue; its status updates while it waits keep the walsender from dropping the connection.
class StallingDestination : public RecordingDestination {
 public:
  using RecordingDestination::RecordingDestination;
  absl::Status Write(const cdc::ChangeBatch& batch) override {
    if (!stalled_) {
      stalled_ = true;
      absl::SleepFor(absl::Seconds(4));
    }
    return RecordingDestination::Write(batch);
  }

 private:
  bool stalled_ = false;
};

TEST_F(PipelineTest, ADestinationStalledPastTheWalsenderTimeoutKeepsTheConnection) {
  Sql("CREATE TABLE st (id int PRIMARY KEY)");
  RecordingDestination::Shared shared;
  ASSERT_TRUE(RunUntilIdle(shared, 1).ok());
  runner::PipelineOptions options = options_;
  options.source.dsn = absl::StrCat(options.source.dsn, " options='-c wal_sender_timeout=1s'");
  options.source.batch_rows = 100;
  options.source.status_interval = absl::Milliseconds(200);
  options.max_inflight_bytes = 1;  // one queued batch: the reader waits behind the stall
  RunningPipeline pipeline(options, std::make_unique<StallingDestination>(&shared), store_.get());
  for (int t = 0; t < 20; ++t) {  // 20 transactions: 20 batches of 100 rows
    Sql(absl::StrCat("INSERT INTO st SELECT g FROM generate_series(", t * 100 + 1, ", ",
                     t * 100 + 100, ") g"));
  }
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        absl::MutexLock lock(&shared.mu);
        return shared.rows.size() >= 2000;
      },
      absl::Seconds(60)));
  const absl::Status result = pipeline.Stop();
  ASSERT_TRUE(result.ok()) << result;
  EXPECT_EQ(pipeline.stats().reconnects.load(), 0) << "the walsender dropped a waiting reader";
  // The reader waited behind the 4 s stall (the worker reports it as time spent waiting for
  // the destinations).
  EXPECT_GT(pipeline.stats().reader_blocked_ns.load(), absl::ToInt64Nanoseconds(absl::Seconds(2)));
  absl::MutexLock lock(&shared.mu);
  EXPECT_EQ(shared.rows.size(), 2000u);
}

TEST_F(PipelineTest, IdleFlowAdvancesTheSlotPastOtherDatabasesWork) {
  Sql("CREATE TABLE quiet (id int PRIMARY KEY)");
  RecordingDestination::Shared shared;
  ASSERT_TRUE(RunUntilIdle(shared, 1).ok());
  const std::string first = ConfirmedFlush();
  // WAL produced elsewhere (an unpublished database) must not stay retained by our slot.
  auto other = pg().CreateDatabase("other");
  ASSERT_TRUE(other.ok());
  auto conn = Connection::Connect(pg().Dsn(*other));
  ASSERT_TRUE(conn.ok());
  ASSERT_TRUE((*conn)->Exec("CREATE TABLE x AS SELECT generate_series(1, 1000) g").ok());
  ASSERT_TRUE(RunUntilIdle(shared, 5).ok());
  EXPECT_GT(*Lsn::Parse(ConfirmedFlush()), *Lsn::Parse(first));
  EXPECT_TRUE(Rows(shared).empty());
}

TEST_F(PipelineTest, PartitionedTablesUseRootOrPartitionNamesAsPublished) {
  Sql("CREATE TABLE parted (id int, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at)");
  Sql("CREATE TABLE parted_a PARTITION OF parted FOR VALUES FROM ('2026-01-01') TO ('2026-07-01')");
  Sql("CREATE TABLE parted_b PARTITION OF parted FOR VALUES FROM ('2026-07-01') TO ('2027-01-01')");
  Sql("CREATE PUBLICATION via_root FOR TABLE parted WITH (publish_via_partition_root = true)");
  Sql("CREATE PUBLICATION via_leaf FOR TABLE parted WITH (publish_via_partition_root = false)");
  const std::string slot = options_.source.slot;
  RecordingDestination::Shared root, leaf;
  options_.source.publication = "via_root";
  ASSERT_TRUE(RunUntilIdle(root, 1).ok());
  options_.source.publication = "via_leaf";
  options_.source.slot = slot + "_leaf";
  options_.flow = FlowId(options_.flow.value() + "_leaf");
  ASSERT_TRUE(RunUntilIdle(leaf, 1).ok());
  Sql("INSERT INTO parted VALUES (1, '2026-02-01'), (2, '2026-08-01')");
  ASSERT_TRUE(RunUntilIdle(leaf).ok());
  options_.source.publication = "via_root";
  options_.source.slot = slot;
  options_.flow = FlowId(options_.flow.value().substr(0, options_.flow.value().size() - 5));
  ASSERT_TRUE(RunUntilIdle(root).ok());
  EXPECT_EQ(Rows(root), (std::vector<std::string>{"public.parted insert id=1,at=2026-02-01",
                                                  "public.parted insert id=2,at=2026-08-01"}));
  EXPECT_EQ(Rows(leaf), (std::vector<std::string>{"public.parted_a insert id=1,at=2026-02-01",
                                                  "public.parted_b insert id=2,at=2026-08-01"}));
  (void)sql_->Exec(absl::StrCat("SELECT pg_drop_replication_slot('", slot, "_leaf')"));
}

}  // namespace
}  // namespace ductstream
