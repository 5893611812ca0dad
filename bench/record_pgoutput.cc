// Records the pgoutput stream of a fixed workload into a file for bench/decode_bench.cc:
//
//   build/release/bench/record_pgoutput OUT_FILE    (uses $DS_PG_SANDBOX or starts a PostgreSQL)
//
// The workload, into the 16-column table of mixed types of bench/harness.py (workload a/b):
// 8 transactions of 1 000 inserted rows, one of 1 000 updates and one of 500 deletes
// (REPLICA IDENTITY DEFAULT: the deletes carry the key only). It is consumed with the protocol
// options the worker requests from that server (ProtocolOptions::ForServer), so the recording
// is exactly what ductstream-worker decodes. The checked-in bench/data/pgoutput_16col.bin was
// recorded from PostgreSQL 15 (protocol v2, binary).
#include <cstdlib>
#include <fstream>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "ductstream/postgres/connection.h"
#include "ductstream/postgres/replication.h"
#include "ductstream/testing/pg_sandbox.h"
#include "pgoutput_recording.h"

namespace {

using ductstream::Lsn;
using ductstream::postgres::Connection;
using ductstream::postgres::ProtocolOptions;
using ductstream::postgres::ReplicationStream;

template <typename T>
T Check(absl::StatusOr<T> v) {
  if (!v.ok()) {
    std::cerr << "record_pgoutput: " << v.status() << "\n";
    std::exit(1);
  }
  return std::move(*v);
}

void Check(const absl::Status& s) {
  if (!s.ok()) {
    std::cerr << "record_pgoutput: " << s << "\n";
    std::exit(1);
  }
}

constexpr char kTable[] = R"sql(CREATE TABLE big (id bigint PRIMARY KEY, a int, b bigint,
  c numeric(12,2), d text, e timestamptz, f bool, g double precision, h date, i uuid, j jsonb,
  k text, l smallint, m real, n varchar(20), o bytea))sql";

std::string InsertRows(int from, int to) {
  return absl::StrCat(R"sql(INSERT INTO big SELECT g, g, g::bigint * 1000, g * 0.01, 'row ' || g,
  TIMESTAMPTZ '2026-01-01 00:00:00+00' + g * INTERVAL '1 second', g % 2 = 0, g / 3.0,
  DATE '2020-01-01' + g % 1000, md5(g::text)::uuid, jsonb_build_object('g', g), md5(g::text),
  (g % 30000)::smallint, g, 'v' || g % 100, '\xdeadbeef' FROM generate_series()sql",
                      from, ", ", to, ") g");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: record_pgoutput OUT_FILE\n";
    return 2;
  }
  auto sandbox = Check(ductstream::testing::PgSandbox::AttachOrStart());
  const std::string db = Check(sandbox->CreateDatabase("pgoutput_rec"));
  const std::string dsn = sandbox->Dsn(db);
  auto sql = Check(Connection::Connect(dsn));
  Check(sql->Exec(kTable).status());
  Check(sql->Exec("CREATE PUBLICATION rec_pub FOR TABLE big").status());
  Check(sql->Exec("SELECT pg_create_logical_replication_slot('rec_slot', 'pgoutput')").status());
  for (int t = 0; t < 8; ++t) Check(sql->Exec(InsertRows(t * 1000 + 1, t * 1000 + 1000)).status());
  Check(sql->Exec("UPDATE big SET a = a + 1, d = 'updated ' || id, j = jsonb_build_object('u', id) "
                  "WHERE id <= 1000")
            .status());
  Check(sql->Exec("DELETE FROM big WHERE id > 7500").status());
  const Lsn end = Check(Lsn::Parse(Check(sql->QueryValue("SELECT pg_current_wal_lsn()::text"))));

  const ProtocolOptions protocol = ProtocolOptions::ForServer(sql->server_version());
  auto repl = Check(Connection::Connect(dsn, Connection::Mode::kReplication));
  auto stream =
      Check(ReplicationStream::Start(std::move(repl), "rec_slot", "rec_pub", Lsn(), protocol));
  std::string out(ductstream::bench::kRecordingMagic);
  ductstream::bench::AppendU32(out, protocol.proto_version);
  ductstream::bench::AppendU32(out, protocol.streaming == "parallel" ? 1 : 0);
  int messages = 0, empty = 0;
  while (empty < 2) {
    auto next = Check(stream->Next(absl::Seconds(1)));
    if (!next.has_value()) {
      // Everything up to `end` has arrived once the server has nothing more to say.
      if (stream->server_wal_end() >= end) ++empty;
      continue;
    }
    ductstream::bench::AppendU64(out, next->wal_start.value());
    ductstream::bench::AppendU32(out, static_cast<uint32_t>(next->payload.size()));
    out.append(next->payload.data(), next->payload.size());
    ++messages;
  }
  std::ofstream f(argv[1], std::ios::binary | std::ios::trunc);
  f.write(out.data(), static_cast<std::streamsize>(out.size()));
  if (!f.good()) {
    std::cerr << "record_pgoutput: cannot write " << argv[1] << "\n";
    return 1;
  }
  std::cout << "recorded " << messages << " messages (" << out.size() << " bytes) to " << argv[1]
            << " from protocol v" << protocol.proto_version << "\n";
  return 0;
}
