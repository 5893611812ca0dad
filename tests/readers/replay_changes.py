#!/usr/bin/env python3
"""Independent reader of a `file` destination directory, in any wire format.

Reads every change file with a library we did not write (pyarrow, fastavro, protobuf, json),
replays the changes in transaction order ((commit_lsn, seq)) per table, and prints JSON:

  {"<schema.table>": {"changes": N, "distinct": D, "rows": {"<key>": "<c1>|<c2>|..."}}}

`changes` counts every change row found (replays included), `distinct` the distinct
(commit_lsn, seq) identities: changes - distinct = rows delivered twice. Values are rendered as
PostgreSQL's ::text would print them for the simple types the end-to-end tests use (int, text,
numeric, bool), NULL as "NULL".

usage: replay_changes.py FORMAT DIR SCHEMA.TABLE KEY_COLUMN COLUMN...
"""
import decimal
import glob
import json
import os
import subprocess
import sys
import tempfile


def render(v):
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, decimal.Decimal):
        return str(v)
    return str(v)


def lsn_value(text):
    hi, lo = text.split("/")
    return (int(hi, 16) << 32) | int(lo, 16)


def rows_from_table(table):
    # pyarrow Table -> change dicts with before/after images as dicts
    for row in table.to_pylist():
        after = {k: v for k, v in row.items() if not k.startswith("__")}
        yield {"op": row["__op"], "commit_lsn": row["__commit_lsn"], "seq": row["__seq"],
               "before": row["__before"], "after": after}


def read_parquet(path):
    import pyarrow.parquet as pq
    return list(rows_from_table(pq.read_table(path)))


def read_arrow(path):
    import pyarrow as pa
    with open(path, "rb") as f:
        return list(rows_from_table(pa.ipc.open_stream(f).read_all()))


def read_avro(path):
    import fastavro
    out = []
    with open(path, "rb") as f:
        for rec in fastavro.reader(f):
            after = {k: v for k, v in rec.items() if not k.startswith("__")}
            out.append({"op": rec["__op"], "commit_lsn": rec["__commit_lsn"], "seq": rec["__seq"],
                        "before": rec["__before"], "after": after})
    return out


def read_json(path):
    out = []
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            o = json.loads(line, parse_float=decimal.Decimal)
            out.append({"op": o["op"], "commit_lsn": lsn_value(o["commit_lsn"]), "seq": o["seq"],
                        "before": o.get("before"), "after": o.get("after") or {}})
    return out


_PB = None


def proto_module():
    global _PB
    if _PB is None:
        root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "proto")
        out = tempfile.mkdtemp(prefix="ds-pb-")
        subprocess.run(["protoc", f"--proto_path={root}", f"--python_out={out}",
                        "ductstream/v1/types.proto", "ductstream/v1/data.proto"], check=True)
        sys.path.insert(0, out)
        from ductstream.v1 import data_pb2  # noqa: E402
        _PB = data_pb2
    return _PB


def read_proto(path):
    pb = proto_module()
    batch = pb.Batch()
    with open(path, "rb") as f:
        batch.ParseFromString(f.read())
    out = []
    for r in batch.records:
        after = json.loads(r.after_json or b"null", parse_float=decimal.Decimal) or {}
        before = json.loads(r.before_json or b"null", parse_float=decimal.Decimal)
        out.append({"op": r.operation, "commit_lsn": lsn_value(r.commit_lsn), "seq": r.seq,
                    "before": before, "after": after})
    return out


READERS = {"parquet": ("parquet", read_parquet), "arrow": ("arrows", read_arrow),
           "avro": ("avro", read_avro), "json": ("jsonl", read_json), "proto": ("pb", read_proto)}


def main():
    fmt, root, table, key, columns = (sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4],
                                      sys.argv[5:])
    ext, reader = READERS[fmt]
    result = {}
    for table_dir in [os.path.join(root, table)]:
        if not os.path.isdir(table_dir):
            continue
        changes = []
        for path in sorted(glob.glob(os.path.join(table_dir, "*." + ext))):
            changes.extend(reader(path))
        changes.sort(key=lambda c: (c["commit_lsn"], c["seq"]))
        rows, seen = {}, set()
        for c in changes:
            ident = (c["commit_lsn"], c["seq"])
            if ident in seen:
                continue  # a replayed change: the identity makes it recognisable
            seen.add(ident)
            if c["op"] == "truncate":
                rows.clear()
            elif c["op"] == "delete":
                rows.pop(render(c["before"][key]), None)
            else:
                if c["op"] == "update" and c["before"] and c["before"].get(key) is not None:
                    rows.pop(render(c["before"][key]), None)
                rows[render(c["after"][key])] = "|".join(render(c["after"].get(k)) for k in columns)
        result[os.path.basename(table_dir)] = {"changes": len(changes), "distinct": len(seen),
                                               "rows": rows}
    json.dump(result, sys.stdout, sort_keys=True)


if __name__ == "__main__":
    main()
