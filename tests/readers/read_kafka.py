#!/usr/bin/env python3
"""Independent reader of what the kafka destination produced, in any wire format.

Consumes every partition of the given topics from the beginning to the end with confluent-kafka
(a client we did not write), decodes each message value with pyarrow, fastavro, protobuf or json
(the decoders of replay_changes.py), replays the changes per table in transaction order
((commit_lsn, seq)) and prints JSON:

  {"tables": {"<schema.table>": {"changes": N, "distinct": D, "rows": {"<key>": "c1|c2|..."}}},
   "messages": [{"topic", "partition", "offset", "key" (text or null), "headers": {...},
                 "changes": n}, ...]}

`changes - distinct` = changes delivered twice. Values are rendered as in replay_changes.py.

usage: read_kafka.py --bootstrap HOST:PORT --topics T1,T2 --format FMT
                     [--isolation read_committed|read_uncommitted]
                     [--table schema.table=key:col1,col2,...]...
"""
import argparse
import io
import json
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import replay_changes as rc  # noqa: E402


def decode_arrow(data):
    import pyarrow as pa
    return list(rc.rows_from_table(pa.ipc.open_stream(pa.BufferReader(data)).read_all()))


def decode_parquet(data):
    import pyarrow as pa
    import pyarrow.parquet as pq
    return list(rc.rows_from_table(pq.read_table(pa.BufferReader(data))))


def decode_avro(data):
    import fastavro
    out = []
    for rec in fastavro.reader(io.BytesIO(data)):
        after = {k: v for k, v in rec.items() if not k.startswith("__")}
        out.append({"op": rec["__op"], "commit_lsn": rec["__commit_lsn"], "seq": rec["__seq"],
                    "before": rec["__before"], "after": after})
    return out


def decode_json(data):
    import decimal
    out = []
    for line in data.decode("utf-8").splitlines():
        if not line.strip():
            continue
        o = json.loads(line, parse_float=decimal.Decimal)
        out.append({"op": o["op"], "commit_lsn": rc.lsn_value(o["commit_lsn"]), "seq": o["seq"],
                    "before": o.get("before"), "after": o.get("after") or {}})
    return out


def decode_proto(data):
    import decimal
    pb = rc.proto_module()
    batch = pb.Batch()
    batch.ParseFromString(data)
    out = []
    for r in batch.records:
        after = json.loads(r.after_json or b"null", parse_float=decimal.Decimal) or {}
        before = json.loads(r.before_json or b"null", parse_float=decimal.Decimal)
        out.append({"op": r.operation, "commit_lsn": rc.lsn_value(r.commit_lsn), "seq": r.seq,
                    "before": before, "after": after})
    return out


DECODERS = {"arrow": decode_arrow, "parquet": decode_parquet, "avro": decode_avro,
            "json": decode_json, "proto": decode_proto}


def consume(bootstrap, topics, isolation, timeout_s=90):
    """Every message of every partition of `topics`, from the first to the last offset."""
    from confluent_kafka import Consumer, KafkaError, TopicPartition
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "reader-" + uuid.uuid4().hex,
                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "isolation.level": isolation, "enable.partition.eof": True})
    parts, ends = [], {}
    for topic in topics:
        md = consumer.list_topics(topic, timeout=30)
        tmd = md.topics.get(topic)
        if tmd is None or tmd.error is not None or not tmd.partitions:
            continue  # never produced to
        for p in tmd.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            if high > low:
                ends[(topic, p)] = high
                parts.append(TopicPartition(topic, p, low))
    messages = []
    if parts:
        consumer.assign(parts)
        pending = set(ends)
        deadline = time.time() + timeout_s
        while pending and time.time() < deadline:
            m = consumer.poll(0.5)
            if m is None:
                continue
            tp = (m.topic(), m.partition())
            if m.error() is not None:
                # End of partition: with read_committed the last offsets may be transaction
                # markers, which are never delivered, so EOF also ends a partition.
                if m.error().code() == KafkaError._PARTITION_EOF:
                    pending.discard(tp)
                    continue
                raise RuntimeError(f"consume {tp}: {m.error()}")
            messages.append(m)
            if m.offset() + 1 >= ends[tp]:
                pending.discard(tp)
        if pending:
            raise RuntimeError(f"timed out reading {sorted(pending)}")
    consumer.close()
    return messages


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topics", required=True)
    ap.add_argument("--format", required=True, choices=sorted(DECODERS))
    ap.add_argument("--isolation", default="read_uncommitted")
    ap.add_argument("--table", action="append", default=[])
    args = ap.parse_args()

    specs = {}
    for t in args.table:
        name, rest = t.split("=", 1)
        key, cols = rest.split(":", 1)
        specs[name] = (key, cols.split(","))

    decode = DECODERS[args.format]
    by_table, out_messages = {}, []
    for m in consume(args.bootstrap, args.topics.split(","), args.isolation):
        headers = {k: (v.decode("utf-8") if v is not None else None)
                   for k, v in (m.headers() or [])}
        table = headers.get("ductstream-schema", "")
        changes = decode(m.value())
        by_table.setdefault(table, []).extend(changes)
        out_messages.append({"topic": m.topic(), "partition": m.partition(),
                             "offset": m.offset(),
                             "key": m.key().decode("utf-8") if m.key() is not None else None,
                             "headers": headers, "changes": len(changes),
                             "ops": [c["op"] for c in changes]})

    tables = {}
    for table, changes in by_table.items():
        changes.sort(key=lambda c: (c["commit_lsn"], c["seq"]))
        key, columns = specs.get(table, (None, []))
        rows, seen = {}, set()
        for c in changes:
            ident = (c["commit_lsn"], c["seq"])
            if ident in seen:
                continue
            seen.add(ident)
            if key is None:
                continue
            if c["op"] == "truncate":
                rows.clear()
            elif c["op"] == "delete":
                rows.pop(rc.render(c["before"][key]), None)
            else:
                if c["op"] == "update" and c["before"] and c["before"].get(key) is not None:
                    rows.pop(rc.render(c["before"][key]), None)
                rows[rc.render(c["after"][key])] = "|".join(
                    rc.render(c["after"].get(k)) for k in columns)
        tables[table] = {"changes": len(changes), "distinct": len(seen), "rows": rows}
    json.dump({"tables": tables, "messages": out_messages}, sys.stdout, sort_keys=True,
              default=str)


if __name__ == "__main__":
    main()
