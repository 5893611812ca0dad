#!/usr/bin/env python3
"""The streaming benchmark of docs/benchmarks.md: run through `bench/run`, not directly.

For each workload: fresh tables, one publication, one logical slot per consumer created at the
same WAL position BEFORE the workload is loaded (so every consumer decodes exactly the same WAL),
then, one after the other:

  baseline   pg_recvlogical into /dev/null with the protocol options the worker requests
  null       ductstream-worker, `null` destination (decode-only: replication + pgoutput decoding
             + Arrow batch building)
  parquet    ductstream-worker, `file` destination, Parquet
  arrow      ductstream-worker, `file` destination, Arrow IPC
  kafka-batch / kafka-record   ductstream-worker, `kafka` destination (with --kafka)
  baseline   again, on its own second slot: the ratio uses the faster of the two baselines

A consumer's time runs from its start until its slot's confirmed_flush_lsn reaches the WAL
position taken right after the load (polled every 20 ms), i.e. until the whole workload is
durable at the destination and acknowledged; pg_recvlogical stops by itself at that position
(--endpos). Worker CPU seconds and peak RSS come from GNU time.

First, the latency phase: a steady insert rate (pgbench --rate), a reader of the destination (files
polled every 5 ms; a Kafka consumer with --kafka) computes commit-to-visible latency per row from
the row's __commit_ts / commit_ts.
"""

import argparse
import datetime
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKER = os.path.join(ROOT, "build/release/apps/ductstream-worker/ductstream-worker")

BIG_COLUMNS = """id bigint PRIMARY KEY, a int, b bigint, c numeric(12,2), d text, e timestamptz,
  f bool, g double precision, h date, i uuid, j jsonb, k text, l smallint, m real,
  n varchar(20), o bytea"""


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Postgres:
    """The sandbox cluster, driven through psql (no Python driver needed)."""

    def __init__(self, state_file):
        self.env = dict(os.environ)
        with open(state_file) as f:
            for line in f:
                k, _, v = line.strip().partition("=")
                if k:
                    self.env[k] = v
        self.bindir = self.env["PG_BINDIR"]
        self.dsn = (f"host={self.env['PGHOST']} port={self.env['PGPORT']} "
                    f"user={self.env['PGUSER']} dbname=postgres")

    def psql(self, sql, quiet=True):
        out = subprocess.run([os.path.join(self.bindir, "psql"), "-X", "-At", "-v",
                              "ON_ERROR_STOP=1", "-d", "postgres", "-c", sql],
                             env=self.env, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"psql failed: {out.stderr.strip()}\nSQL: {sql[:500]}")
        return out.stdout.strip()

    def bin(self, name):
        return os.path.join(self.bindir, name)


class LsnPoller:
    """One psql session kept open to poll slots' confirmed_flush_lsn cheaply."""

    def __init__(self, pg):
        self.proc = subprocess.Popen([pg.bin("psql"), "-X", "-At", "-d", "postgres"],
                                     env=pg.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, bufsize=1)

    def reached(self, slot, lsn):
        self.proc.stdin.write(
            "SELECT coalesce(confirmed_flush_lsn >= '%s'::pg_lsn, false) FROM "
            "pg_replication_slots WHERE slot_name = '%s';\n" % (lsn, slot))
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip() == "t"

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def host_busy_jiffies():
    """Busy and total jiffies of the whole machine (/proc/stat): with the consumer's own CPU it
    tells whether a run was bound by the consumer or by the machine (walsender, broker and
    consumer together using every core)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]  # idle + iowait
    return sum(v[:8]) - idle, sum(v[:8])


def host_cores(before, after):
    busy, total = after[0] - before[0], after[1] - before[1]
    return os.cpu_count() * busy / total if total else float("nan")


def timed(cmd, env, time_file, **kw):
    """Starts `cmd` under GNU time (peak RSS KB, user s, sys s into time_file)."""
    return subprocess.Popen(["/usr/bin/time", "-f", "%M %U %S", "-o", time_file] + cmd, env=env,
                            **kw)


def children(proc):
    for _ in range(100):
        try:
            with open(f"/proc/{proc.pid}/task/{proc.pid}/children") as f:
                found = [int(c) for c in f.read().split()]
            if found:
                return found
        except FileNotFoundError:
            return []
        time.sleep(0.01)
    return []


def attach_perf(proc, name):
    """With DS_BENCH_PERF=DIR: `perf record -g` of the worker into DIR/perf-NAME.data."""
    out = os.environ.get("DS_BENCH_PERF")
    if not out:
        return None
    os.makedirs(out, exist_ok=True)
    pids = children(proc)
    if not pids:
        return None
    return subprocess.Popen(["perf", "record", "-F", "999", "--call-graph", "dwarf,16384", "-p",
                             str(pids[0]), "-o", os.path.join(out, f"perf-{name}.data")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop_child(proc):
    """SIGTERM to the command GNU time runs (GNU time itself would die of it, reporting nothing)."""
    if proc.poll() is not None:
        return
    for c in children(proc):
        os.kill(c, signal.SIGTERM)


def read_time(time_file):
    with open(time_file) as f:
        last = f.read().strip().splitlines()[-1].split()
    return int(last[0]), float(last[1]) + float(last[2])


# ------------------------------------------------------------------------------------------------
# Workloads: setup (not measured, before the slots), load (measured WAL), description.


def pgbench(pg, script_files, clients, transactions, work, extra=()):
    args = [pg.bin("pgbench"), "-n", "-M", "prepared", "-c", str(clients), "-j", "2"]
    args += ["-t", str(max(1, transactions // clients))]
    for path, weight in script_files:
        args += ["-f", f"{path}@{weight}"]
    args += list(extra) + ["postgres"]
    out = subprocess.run(args, env=pg.env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"pgbench failed: {out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    m = re.search(r"tps = ([0-9.]+)", out.stdout)
    return float(m.group(1)) if m else 0.0


def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


class BigTransaction:
    name = "a: 1 txn x {rows} rows, 16 cols"

    def __init__(self, scale):
        self.rows = int(5_000_000 * scale)
        self.key = "a-big-txn"
        self.name = f"a-big-txn ({self.rows} rows in 1 txn)"
        self.tables = ["bench_big"]

    def setup(self, pg, work):
        pg.psql(f"DROP TABLE IF EXISTS bench_big; CREATE TABLE bench_big ({BIG_COLUMNS})")

    def load(self, pg, work):
        pg.psql(f"""INSERT INTO bench_big SELECT g, g, g::bigint * 1000, g * 0.01, 'row ' || g,
          now(), g % 2 = 0, g / 3.0, DATE '2020-01-01' + g % 1000, gen_random_uuid(),
          jsonb_build_object('g', g), md5(g::text), (g % 30000)::smallint, g, 'v' || g % 100,
          '\\xdeadbeef' FROM generate_series(1, {self.rows}) g""")


class SmallTransactions:
    def __init__(self, scale):
        self.txns = max(8, int(1_000_000 * scale))
        self.key = "b-small-txns"
        self.name = f"b-small-txns ({self.txns} 1-row txns, 8 clients)"
        self.tables = ["bench_txn"]

    def setup(self, pg, work):
        pg.psql("DROP TABLE IF EXISTS bench_txn; CREATE TABLE bench_txn (" +
                BIG_COLUMNS.replace("id bigint PRIMARY KEY", "id bigserial PRIMARY KEY") + ")")
        self.script = write(os.path.join(work, "txn.sql"), """\\set r random(1, 1000000000)
INSERT INTO bench_txn (a, b, c, d, e, f, g, h, i, j, k, l, m, n, o) SELECT r, r * 1000,
  r * 0.01, 'row ' || r, now(), r % 2 = 0, r / 3.0, DATE '2020-01-01' + (r % 1000)::int,
  gen_random_uuid(), jsonb_build_object('g', r), md5(r::text), (r % 30000)::smallint, r,
  'v' || r % 100, '\\xdeadbeef' FROM (SELECT :r::bigint AS r) s;
""")

    def load(self, pg, work):
        pgbench(pg, [(self.script, 1)], 8, self.txns, work)


# Row shapes of workload (c): columns, prepopulation SELECT over generate_series g, and the
# UPDATE's SET list.
SHAPES = {
    "narrow": ("a int, b bigint, c text, d timestamptz, e bool",
               "g, g * 7, 'narrow row ' || md5(g::text), now(), g % 2 = 0",
               "a = a + 1, d = now()",
               "r, r * 7, 'narrow row ' || md5(r::text), now(), r % 2 = 0"),
    "wide": (", ".join(f"c{i} text" for i in range(20)) + ", n int",
             ", ".join(f"repeat(md5((g + {i})::text), 3)" for i in range(20)) + ", g",
             "n = n + 1, c0 = md5(n::text)",
             ", ".join(f"repeat(md5((r + {i})::text), 3)" for i in range(20)) + ", r"),
    "json": ("n int, doc jsonb",
             "g, (SELECT jsonb_agg(jsonb_build_object('k', i, 'v', md5((g * 1000 + i)::text), "
             "'t', 'item')) FROM generate_series(1, 150) i)",
             "n = n + 1, doc = jsonb_set(doc, '{0,k}', to_jsonb(n))",
             "r, (SELECT jsonb_agg(jsonb_build_object('k', i, 'v', md5((r * 1000 + i)::text), "
             "'t', 'item')) FROM generate_series(1, 150) i)"),
}


class Mix:
    def __init__(self, shape, scale):
        self.shape = shape
        # The JSON rows are ~100 times wider than the narrow ones: fewer of them keep the WAL
        # (and the run) of the three mixes within the same order of magnitude. Each consumer
        # runs for several seconds (~8-15 s here): a flow's last partial batch waits for
        # batch_timeout (200 ms) before it is written, which must stay a small part of a run.
        factor = {"narrow": 1.0, "wide": 0.5, "json": 0.2}[shape]
        self.rows = max(100, int(100_000 * scale * factor))
        self.txns = max(8, int(1_200_000 * scale * factor))
        self.table = f"bench_{shape}"
        self.tables = [self.table]
        self.key = f"c-mix-{shape}"
        self.name = f"c-mix-{shape} ({self.txns} txns 70/20/10 upd/ins/del on {self.rows} rows)"

    def setup(self, pg, work):
        cols, fill, _, _ = SHAPES[self.shape]
        t = self.table
        pg.psql(f"DROP TABLE IF EXISTS {t}; CREATE TABLE {t} (id bigserial PRIMARY KEY, {cols})")
        if self.shape == "json":
            # Out of line and uncompressed: every row's document is TOASTed.
            pg.psql(f"ALTER TABLE {t} ALTER COLUMN doc SET STORAGE EXTERNAL")
        pg.psql(f"INSERT INTO {t} SELECT g, {fill} FROM generate_series(1, {self.rows}) g; "
                f"SELECT setval('{t}_id_seq', {self.rows})")
        pg.psql(f"VACUUM ANALYZE {t}")
        _, _, set_list, values = SHAPES[self.shape]
        col_names = ", ".join(c.split()[0] for c in cols.split(", "))
        self.scripts = [
            (write(os.path.join(work, f"{t}_upd.sql"),
                   f"\\set id random(1, {self.rows})\nUPDATE {t} SET {set_list} WHERE id = :id;\n"),
             70),
            (write(os.path.join(work, f"{t}_ins.sql"),
                   f"\\set r random(1, 1000000000)\nINSERT INTO {t} ({col_names}) SELECT {values} "
                   "FROM (SELECT :r::bigint AS r) s;\n"),
             20),
            (write(os.path.join(work, f"{t}_del.sql"),
                   f"\\set id random(1, {self.rows})\nDELETE FROM {t} WHERE id = :id;\n"), 10),
        ]

    def load(self, pg, work):
        pgbench(pg, self.scripts, 8, self.txns, work)


# ------------------------------------------------------------------------------------------------
# Consumers


def protocol_options(server_version_num):
    """What ProtocolOptions::ForServer (postgres/replication.cc) requests."""
    if server_version_num >= 160000:
        o = {"proto_version": "4", "streaming": "parallel"}
    elif server_version_num >= 140000:
        o = {"proto_version": "2", "streaming": "on"}
    else:
        o = {"proto_version": "1"}
    if server_version_num >= 140000:
        o.update(binary="true", messages="true")
    return o


KAFKA_MAX_MESSAGE = 64 << 20


def create_topic(bootstrap, topic, max_message_bytes):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1, config={
        "max.message.bytes": str(max_message_bytes)})])
    for f in futures.values():
        try:
            f.result(30)
        except Exception as e:  # already there (a second repetition)
            if "already exists" not in str(e).lower():
                raise


def mode_destination(mode, work, topic_prefix, bootstrap):
    """(flow wire_format, destination JSON) of a worker mode."""
    if mode == "null":
        return "arrow", {"name": "sink", "type": "null", "options": {}}
    if mode in ("parquet", "arrow"):
        return mode, {"name": "files", "type": "file",
                      "options": {"path": os.path.join(work, "out")}}
    if mode == "kafka-batch":
        # A batch of the default size (10 000 rows, up to max_batch_bytes of Arrow memory) is one
        # message of several MB: the topic is created to take up to 64 MiB (create_topic).
        create_topic(bootstrap, f"{topic_prefix}.batch", KAFKA_MAX_MESSAGE)
        return "arrow", {"name": "kafka", "type": "kafka", "options": {
            "brokers": bootstrap, "topic": f"{topic_prefix}.batch", "message_mode": "batch",
            "format": "arrow", "max_message_bytes": str(KAFKA_MAX_MESSAGE)}}
    if mode == "kafka-record":
        return "json", {"name": "kafka", "type": "kafka", "options": {
            "brokers": bootstrap, "topic": f"{topic_prefix}.record", "message_mode": "record",
            "format": "json"}}
    raise ValueError(mode)


def write_flow(pg, work, name, slot, mode, bootstrap, topic_prefix, source_extra):
    wire, dest = mode_destination(mode, work, topic_prefix, bootstrap)
    # DS_BENCH_DEST_OPTIONS='{"librdkafka.batch.size": "4000000"}': extra destination options
    # (for tuning experiments; the table's figures use the defaults).
    dest["options"].update(json.loads(os.environ.get("DS_BENCH_DEST_OPTIONS", "{}")))
    source = {"dsn": pg.dsn, "slot": slot, "publication": "bench_pub", "batch_timeout": "200ms"}
    source.update(source_extra)
    flow = {"name": name, "wire_format": wire,
            "source": {"name": "pg", "type": "postgres", "options": source},
            "destinations": [dest]}
    path = os.path.join(work, f"{name}.json")
    with open(path, "w") as f:
        json.dump(flow, f, indent=1)
    return path


def wait_for_slot(poller, proc, slot, end_lsn, start):
    """Seconds until the slot confirms end_lsn (or the process exits)."""
    while True:
        if poller.reached(slot, end_lsn):
            return time.monotonic() - start
        if proc.poll() is not None:
            if poller.reached(slot, end_lsn):
                return time.monotonic() - start
            return None
        time.sleep(0.02)


def run_worker(pg, poller, work, mode, slot, end_lsn, bootstrap, topic_prefix, source_extra,
               worker=WORKER):
    flow = write_flow(pg, work, f"bench-{mode}", slot, mode, bootstrap, topic_prefix, source_extra)
    # Slot names repeat between workloads: each run starts with a checkpoint database of its own.
    cp = os.path.join(work, f"cp-{slot}.db")
    for f in glob.glob(cp + "*"):
        os.remove(f)
    env = dict(pg.env, DUCTSTREAM_CHECKPOINT_PATH=cp,
               DUCTSTREAM_LOG_LEVEL="info")
    time_file = os.path.join(work, f"time-{slot}")
    log_path = os.path.join(work, f"worker-{slot}.log")
    with open(log_path, "w") as logf:
        host0 = host_busy_jiffies()
        start = time.monotonic()
        # Runs until stopped (SIGTERM, graceful) once the slot has confirmed the whole workload:
        # -max-empty-reads would also count the seconds the walsender spends decoding a large
        # transaction before it sends anything.
        proc = timed([worker, "-flow", flow], env, time_file, stdout=logf,
                     stderr=subprocess.STDOUT)
        perf = attach_perf(proc, f"{mode}-{slot}")
        seconds = wait_for_slot(poller, proc, slot, end_lsn, start)
        host = host_cores(host0, host_busy_jiffies())
        if perf is not None:
            perf.send_signal(signal.SIGINT)
            perf.wait()
        stop_child(proc)
        rc = proc.wait()
    text = open(log_path).read()
    if rc != 0 or seconds is None:
        raise RuntimeError(f"worker ({mode}) failed, rc={rc}, log {log_path}:\n{text[-3000:]}")
    rss_kb, cpu = read_time(time_file)
    rows = None
    # The worker's summary when it stops: "flow F: N rows in M batches written, ...".
    written = re.findall(r"(\d+) rows in \d+ batches written", text)
    if written:
        rows = int(written[-1])
    if mode in ("parquet", "arrow"):
        rows = count_file_rows(mode, os.path.join(work, "out"))
        shutil.rmtree(os.path.join(work, "out"), ignore_errors=True)
    return {"seconds": seconds, "cpu": cpu, "rss_mb": rss_kb / 1024, "rows": rows, "host": host}


EXTENSIONS = {"parquet": "parquet", "arrow": "arrows"}  # codec/codec.cc


def count_file_rows(fmt, out):
    import pyarrow as pa
    import pyarrow.ipc as ipc
    import pyarrow.parquet as pq
    n = 0
    for f in glob.glob(os.path.join(out, "*", "*." + EXTENSIONS[fmt])):
        if fmt == "parquet":
            n += pq.ParquetFile(f).metadata.num_rows
        else:
            with pa.memory_map(f) as source:
                n += sum(b.num_rows for b in ipc.open_stream(source))
    return n


def run_baseline(pg, work, slot, end_lsn, proto):
    cmd = [pg.bin("pg_recvlogical"), "-d", pg.dsn, "--slot", slot, "--start", "--endpos",
           end_lsn, "-f", "/dev/null", "-F", "0"]
    for k, v in proto.items():
        cmd += ["-o", f"{k}={v}"]
    cmd += ["-o", "publication_names=bench_pub"]
    time_file = os.path.join(work, f"time-{slot}")
    host0 = host_busy_jiffies()
    start = time.monotonic()
    proc = timed(cmd, pg.env, time_file, stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate()
    seconds = time.monotonic() - start
    host = host_cores(host0, host_busy_jiffies())
    if proc.returncode != 0:
        raise RuntimeError(f"pg_recvlogical failed: {err}")
    rss_kb, cpu = read_time(time_file)
    return {"seconds": seconds, "cpu": cpu, "rss_mb": rss_kb / 1024, "rows": None, "host": host}


def drop_slot(pg, slot):
    """Drops a slot once its consumer's walsender has gone."""
    for _ in range(100):
        try:
            pg.psql(f"SELECT pg_drop_replication_slot('{slot}')")
            return
        except RuntimeError as e:
            if "is active" not in str(e):
                raise
            time.sleep(0.1)
    raise RuntimeError(f"slot {slot} still active")


def run_workload(pg, wl, modes, args, work, proto, bootstrap):
    log(f"workload {wl.name}: setup")
    wl.setup(pg, work)
    # (slot, consumer): each repetition runs the baseline then every mode; a last baseline
    # closes the sequence, so that every mode has a baseline run on either side.
    # DS_BENCH_ALT_WORKER=PATH runs every mode with that binary too (as "<mode>@alt"): an A/B
    # comparison of two builds on the same WAL. The second of two back-to-back runs of the same
    # mode tends to be faster even with the same binary (an A/A run: 4-25 % less worker CPU,
    # docs/benchmarks.md), so the pair's order alternates between repetitions: use an even
    # --repeat for A/B.
    alt = os.environ.get("DS_BENCH_ALT_WORKER")
    plan = []
    for rep in range(args.repeat):
        pair = (lambda m: [m, m + "@alt"]) if rep % 2 == 0 else (lambda m: [m + "@alt", m])
        all_modes = [m for mode in modes for m in (pair(mode) if alt else [mode])]
        plan += [(f"baseline_{rep}", "baseline")] + [
            (f"{m.replace('-', '_').replace('@', '_')}_{rep}", m) for m in all_modes]
    plan.append((f"baseline_{args.repeat}", "baseline"))
    slots = [slot for slot, _ in plan]
    pg.psql("DROP PUBLICATION IF EXISTS bench_pub; CREATE PUBLICATION bench_pub FOR TABLE " +
            ", ".join(wl.tables))
    pg.psql("CHECKPOINT")
    for s in slots:
        pg.psql(f"SELECT pg_create_logical_replication_slot('{s}', 'pgoutput')")
    log(f"workload {wl.name}: load")
    t0 = time.monotonic()
    wl.load(pg, work)
    load_s = time.monotonic() - t0
    end_lsn = pg.psql("SELECT pg_current_wal_insert_lsn()")
    wal_bytes = int(pg.psql(
        f"SELECT '{end_lsn}'::pg_lsn - confirmed_flush_lsn FROM pg_replication_slots "
        f"WHERE slot_name = '{slots[0]}'"))
    log(f"  loaded in {load_s:.1f} s, {wal_bytes / 1e6:.0f} MB of WAL, end {end_lsn}")
    results = {}
    poller = LsnPoller(pg)
    topic_prefix = f"bench.{re.sub('[^a-z0-9]', '', wl.name.split(' ')[0])}.{int(time.time())}"
    try:
        for s, mode in plan:
            if mode == "baseline":
                r = run_baseline(pg, work, s, end_lsn, proto)
            else:
                base_mode, _, which = mode.partition("@")
                r = run_worker(pg, poller, work, base_mode, s, end_lsn, bootstrap, topic_prefix,
                               args.source_options, alt if which == "alt" else WORKER)
            results.setdefault(mode, []).append(r)
            log(f"  {s:16s} {r['seconds']:7.2f} s  cpu {r['cpu']:6.2f} s  host {r['host']:4.2f} cores"
                f"  rss {r['rss_mb']:5.0f} MB"
                + (f"  rows {r['rows']}" if r["rows"] is not None else ""))
            drop_slot(pg, s)
    finally:
        poller.close()
        for s in slots:
            subprocess.run([pg.bin("psql"), "-X", "-qAt", "-d", "postgres", "-c",
                            f"SELECT pg_drop_replication_slot('{s}') FROM pg_replication_slots "
                            f"WHERE slot_name = '{s}'"], env=pg.env, capture_output=True)
    rows = next((r["rows"] for runs in results.values() for r in runs if r["rows"]), None)
    for mode, runs in results.items():
        if mode != "baseline" and rows is not None and any(r["rows"] not in (None, rows)
                                                           for r in runs):
            log(f"  WARNING: {mode} delivered {[r['rows'] for r in runs]} rows, expected {rows}")
    return {"workload": wl.key, "description": wl.name, "load_s": load_s,
            "wal_mb": wal_bytes / 1e6, "rows": rows, "results": results}


# ------------------------------------------------------------------------------------------------
# Latency


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100 * (len(sorted_values) - 1)))))
    return sorted_values[k]


def file_reader(out, fmt, latencies, stop):
    import pyarrow as pa
    import pyarrow.ipc as ipc
    seen = set()
    while not stop.is_set():
        for f in glob.glob(os.path.join(out, "*", "*." + EXTENSIONS[fmt])):
            if f in seen:
                continue
            seen.add(f)
            now = time.time()
            with pa.memory_map(f) as source:
                table = ipc.open_stream(source).read_all()
            for ts in table.column("__commit_ts").to_pylist():
                latencies.append((ts.timestamp(), now - ts.timestamp()))
        time.sleep(0.005)


def kafka_reader(bootstrap, topic, latencies, stop):
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{time.time()}",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "fetch.wait.max.ms": 5})
    from confluent_kafka import OFFSET_BEGINNING, TopicPartition
    c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])  # no group rebalance to wait for
    try:
        while not stop.is_set():
            msg = c.poll(0.05)
            if msg is None or msg.error():
                continue
            now = time.time()
            ts = json.loads(msg.value())["commit_ts"]
            t = datetime.datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
            latencies.append((t, now - t))
    finally:
        c.close()


def run_latency(pg, args, work, bootstrap):
    results = []
    pg.psql("DROP TABLE IF EXISTS bench_lat; CREATE TABLE bench_lat (id bigserial PRIMARY KEY, "
            "v int, t text, at timestamptz DEFAULT clock_timestamp())")
    script = write(os.path.join(work, "lat.sql"), "\\set r random(1, 1000000)\n"
                   "INSERT INTO bench_lat (v, t) VALUES (:r, md5(:r::text));\n")
    pg.psql("DROP PUBLICATION IF EXISTS bench_pub; CREATE PUBLICATION bench_pub FOR TABLE bench_lat")
    modes = ["arrow"] + (["kafka-record"] if bootstrap else [])
    for mode in modes:
        slot = "lat_" + mode.replace("-", "_")
        pg.psql(f"SELECT pg_create_logical_replication_slot('{slot}', 'pgoutput')")
        topic_prefix = f"bench.lat.{int(time.time())}"
        flow = write_flow(pg, work, f"lat-{mode}", slot, mode, bootstrap, topic_prefix,
                          dict(args.source_options, batch_timeout=args.latency_batch_timeout))
        env = dict(pg.env, DUCTSTREAM_CHECKPOINT_PATH=os.path.join(work, f"cp-{slot}.db"),
                   DUCTSTREAM_LOG_LEVEL="warn")
        latencies, stop = [], threading.Event()
        if mode == "arrow":
            reader = threading.Thread(target=file_reader,
                                      args=(os.path.join(work, "out"), "arrow", latencies, stop))
        else:
            create_topic(bootstrap, f"{topic_prefix}.record", 1 << 20)
            reader = threading.Thread(target=kafka_reader,
                                      args=(bootstrap, f"{topic_prefix}.record", latencies, stop))
        reader.start()
        time_file = os.path.join(work, f"time-{slot}")
        proc = timed([WORKER, "-flow", flow], env, time_file)
        time.sleep(2)  # connected and streaming
        before = int(pg.psql("SELECT count(*) FROM bench_lat"))
        log(f"latency ({mode}): {args.rate} rows/s for {args.latency_seconds} s")
        load_start = time.time()
        tps = pgbench_rate(pg, script, args.rate, args.latency_seconds)
        expected = int(pg.psql("SELECT count(*) FROM bench_lat")) - before
        deadline = time.monotonic() + 30
        while len(latencies) < expected and time.monotonic() < deadline:
            time.sleep(0.1)
        stop.set()
        reader.join()
        stop_child(proc)
        proc.wait()
        drop_slot(pg, slot)
        shutil.rmtree(os.path.join(work, "out"), ignore_errors=True)
        # Rows committed in the first second are the warm-up.
        lat = sorted(l for t, l in latencies if t >= load_start + 1)
        r = {"mode": mode, "rate": tps, "rows": len(latencies), "expected": expected,
             "p50": percentile(lat, 50) * 1000, "p95": percentile(lat, 95) * 1000,
             "p99": percentile(lat, 99) * 1000, "batch_timeout": args.latency_batch_timeout}
        log(f"  {r}")
        results.append(r)
    return results


def pgbench_rate(pg, script, rate, seconds):
    args = [pg.bin("pgbench"), "-n", "-M", "prepared", "-c", "4", "-j", "2", "-R", str(rate),
            "-T", str(seconds), "-f", script, "postgres"]
    # The sandbox runs with synchronous_commit=off, where a commit reaches the WAL on disk (and
    # so the walsender) only at the WAL writer's next round (wal_writer_delay, 200 ms): commit
    # synchronously, as an application that cares about latency would.
    env = dict(pg.env, PGOPTIONS="-c synchronous_commit=on")
    out = subprocess.run(args, env=env, check=True, capture_output=True, text=True)
    m = re.search(r"tps = ([0-9.]+)", out.stdout)
    return float(m.group(1)) if m else 0.0


# ------------------------------------------------------------------------------------------------


def print_tables(runs, latency, out, quiet=False):
    # others CPU s: what the rest of the machine (walsender, broker, Postgres background) used
    # during the run; CPU floor s: the run's whole CPU (consumer + others) over the machine's
    # cores, the time it would take if every core were busy all along. A run whose seconds are
    # close to its floor was bound by the machine, not by waiting.
    lines = ["| workload | rows | WAL MB | consumer | seconds (each run) | rows/s (best) | ratio | "
             "CPU s | CPU s / M rows | cores | host cores | others CPU s | CPU floor s | "
             "peak RSS MB |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        res = run["results"]
        rows = run["rows"] or 0
        base = min(r["seconds"] for r in res["baseline"])
        for mode, mode_runs in res.items():
            best = min(mode_runs, key=lambda r: r["seconds"])
            ratio = base / best["seconds"]
            cpu_m = best["cpu"] / (rows / 1e6) if rows else float("nan")
            all_s = " / ".join(f"{r['seconds']:.2f}" for r in mode_runs)
            host_cpu = best.get("host", float("nan")) * best["seconds"]
            others = host_cpu - best["cpu"]
            floor = host_cpu / os.cpu_count()
            lines.append(f"| {run['workload']} | {rows} | {run['wal_mb']:.0f} | {mode} | "
                         f"{all_s} | {rows / best['seconds']:,.0f} | {ratio:.2f} | "
                         f"{best['cpu']:.1f} | {cpu_m:.1f} | {best['cpu'] / best['seconds']:.2f} | "
                         f"{best.get('host', float('nan')):.2f} | {others:.1f} | {floor:.2f} | "
                         f"{best['rss_mb']:.0f} |")
    lines += [""] + [f"- {run['description']}: loaded in {run['load_s']:.1f} s"
                     for run in runs]
    if latency:
        lines += ["", "| destination | rate rows/s | rows seen / inserted | batch_timeout | "
                  "p50 ms | p95 ms | p99 ms |", "|---|---|---|---|---|---|---|"]
        for r in latency:
            lines.append(f"| {r['mode']} | {r['rate']:.0f} | {r['rows']} / {r['expected']} | "
                         f"{r['batch_timeout']} | {r['p50']:.0f} | {r['p95']:.0f} | "
                         f"{r['p99']:.0f} |")
    text = "\n".join(lines)
    if not quiet:
        print(text)
    with open(out, "w") as f:
        f.write(text + "\n")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--scale", type=float, default=1.0)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--workloads", default="a,b,c")
    p.add_argument("--modes", default="null,parquet,arrow")
    p.add_argument("--kafka-bootstrap", default="")
    p.add_argument("--rate", type=int, default=5000)
    p.add_argument("--latency-seconds", type=int, default=30)
    p.add_argument("--latency-batch-timeout", default="100ms")
    p.add_argument("--no-latency", action="store_true")
    p.add_argument("--tcp", action="store_true")
    p.add_argument("--source-options", default="{}", type=json.loads)
    p.add_argument("--pg-state", required=True)
    p.add_argument("--results", required=True)
    args = p.parse_args()

    pg = Postgres(args.pg_state)
    if args.tcp:
        # The sandbox also listens on 127.0.0.1: the way a consumer on another host connects.
        pg.dsn = pg.dsn.replace(f"host={pg.env['PGHOST']}", "host=127.0.0.1")
    proto = protocol_options(int(pg.psql("SHOW server_version_num")))
    log(f"PostgreSQL {pg.psql('SHOW server_version')}, protocol options {proto}")
    if os.environ.get("DS_BENCH_ALT_WORKER") and args.repeat % 2 == 1:
        log("note: an A/B comparison (DS_BENCH_ALT_WORKER) needs an even --repeat: the order of "
            "the two builds alternates, and the second of two back-to-back runs is often faster")
    modes = args.modes.split(",")
    workloads = []
    for w in args.workloads.split(","):
        if w == "a":
            workloads.append(BigTransaction(args.scale))
        elif w == "b":
            workloads.append(SmallTransactions(args.scale))
        elif w == "c":
            workloads += [Mix(s, args.scale) for s in ("narrow", "wide", "json")]
        elif w.startswith("c-"):
            workloads.append(Mix(w[2:], args.scale))
        else:
            sys.exit(f"unknown workload {w}")
    work = tempfile.mkdtemp(prefix="ds-bench.")
    os.chmod(work, 0o755)
    try:
        latency = [] if args.no_latency else run_latency(pg, args, work, args.kafka_bootstrap)
        runs = []
        for wl in workloads:
            runs.append(run_workload(pg, wl, modes, args, work, proto, args.kafka_bootstrap))
            # What is done so far, in case a long run is interrupted.
            os.makedirs(args.results, exist_ok=True)
            print_tables(runs, latency, os.path.join(args.results, "partial.md"), quiet=True)
    finally:
        if os.environ.get("DS_BENCH_KEEP"):
            log(f"kept {work} (DS_BENCH_KEEP)")
        else:
            shutil.rmtree(work, ignore_errors=True)
    os.makedirs(args.results, exist_ok=True)
    with open(os.path.join(args.results, "results.json"), "w") as f:
        json.dump({"runs": runs, "latency": latency, "args": vars(args)}, f, indent=1)
    print_tables(runs, latency, os.path.join(args.results, "results.md"))


if __name__ == "__main__":
    main()
