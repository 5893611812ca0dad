// pgstream consumer throughput: messages/s through StreamStore::Pull + Ack (one consumer, one
// connection), against a baseline measured in the same run on the same server: the classic
// single-table SKIP LOCKED queue (`DELETE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED)
// RETURNING payload`), the least work a Postgres queue with disjoint claims can do per message.
// The ratio is what to compare across machines (DESIGN.md §6).
//
//   build/<dir>/bench/stream_bench            (uses $DS_PG_SANDBOX or starts a PostgreSQL)
//
// Each iteration fills the queue with kMessages events of 200 bytes outside the timer, then
// drains it with batches of state.range(0).
#include <benchmark/benchmark.h>

#include <array>
#include <cstdlib>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "ductstream/store/sql_db.h"
#include "ductstream/streams/stream_store.h"
#include "ductstream/testing/pg_sandbox.h"

namespace {

using ductstream::Lsn;
using ductstream::streams::NewEvent;
using ductstream::streams::PullRequest;
using ductstream::streams::StreamStore;

constexpr int kMessages = 5000;

// A static owner: a cluster this process started is stopped at exit.
ductstream::testing::PgSandbox& Sandbox() {
  static std::unique_ptr<ductstream::testing::PgSandbox> sandbox = [] {
    auto s = ductstream::testing::PgSandbox::AttachOrStart();
    if (!s.ok()) {
      std::cerr << "stream_bench: no PostgreSQL: " << s.status() << "\n";
      std::exit(1);
    }
    return std::move(*s);
  }();
  return *sandbox;
}

const std::string& Dsn() {
  static const std::string* dsn = [] {
    auto db = Sandbox().CreateDatabase("stream_bench");
    if (!db.ok()) {
      std::cerr << "stream_bench: " << db.status() << "\n";
      std::exit(1);
    }
    return new std::string(Sandbox().Dsn(*db));
  }();
  return *dsn;
}

void Check(const absl::Status& s) {
  if (!s.ok()) {
    std::cerr << "stream_bench: " << s << "\n";
    std::exit(1);
  }
}

void BM_PullAck(benchmark::State& state) {
  auto store = StreamStore::Open(Dsn());
  Check(store.status());
  static uint64_t next_lsn = 0x1000000;
  const std::string payload(200, 'x');
  int64_t messages = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<NewEvent> events(kMessages);
    for (NewEvent& e : events) {
      e.namespace_name = "public";
      e.table_name = "orders";
      e.lsn = e.commit_lsn = Lsn(next_lsn += 0x10);
      e.wire_format = "json";
      e.payload = payload;
    }
    Check((*store)->Append("bench", "flow", events).status());
    state.ResumeTiming();
    PullRequest r;
    r.stream = "bench";
    r.group = "g";
    r.max_messages = static_cast<int>(state.range(0));
    for (;;) {
      auto got = (*store)->Pull(r);
      Check(got.status());
      if (got->empty()) break;
      std::vector<int64_t> ids;
      for (const auto& m : *got) ids.push_back(m.id);
      auto acked = (*store)->Ack("bench", "g", ids);
      Check(acked.status());
      messages += *acked;
    }
  }
  state.SetItemsProcessed(messages);
}
BENCHMARK(BM_PullAck)->Arg(10)->Arg(100)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_BaselineSkipLockedQueue(benchmark::State& state) {
  auto db = ductstream::store::OpenPostgresDatabase(Dsn());
  Check(db.status());
  Check((*db)->Execute(
      "CREATE TABLE IF NOT EXISTS bench_queue (id bigserial PRIMARY KEY, payload bytea NOT NULL)"));
  int64_t messages = 0;
  const std::array<std::optional<std::string>, 1> limit = {absl::StrCat(state.range(0))};
  for (auto _ : state) {
    state.PauseTiming();
    Check((*db)->Execute(absl::StrCat("INSERT INTO bench_queue (payload) SELECT convert_to(",
                                      "repeat('x', 200), 'UTF8') FROM generate_series(1, ",
                                      kMessages, ")")));
    state.ResumeTiming();
    for (;;) {
      auto rows = (*db)->Query(
          "DELETE FROM bench_queue WHERE id IN (SELECT id FROM bench_queue ORDER BY id "
          "LIMIT $1::int FOR UPDATE SKIP LOCKED) RETURNING id, payload",
          limit);
      Check(rows.status());
      if (rows->empty()) break;
      messages += static_cast<int64_t>(rows->size());
    }
  }
  state.SetItemsProcessed(messages);
}
BENCHMARK(BM_BaselineSkipLockedQueue)
    ->Arg(10)
    ->Arg(100)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
