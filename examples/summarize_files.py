#!/usr/bin/env python3
"""Summarises a `file` destination directory of Parquet change files (used by scripts/demo).

For each table: files, changes by operation, and the rows left after replaying the changes in
transaction order (commit LSN, sequence) — which must equal the source table's row count.

usage: summarize_files.py DIR [SOURCE_COUNTS_JSON]
"""
import collections
import glob
import json
import os
import sys

import pyarrow.parquet as pq


def main():
    root = sys.argv[1]
    source = json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}
    print(f"{'table':<24}{'files':>7}{'load':>9}{'insert':>9}{'update':>9}{'delete':>9}"
          f"{'rows':>9}{'source':>9}  match")
    ok = True
    for table_dir in sorted(glob.glob(os.path.join(root, "*"))):
        table = os.path.basename(table_dir)
        files = sorted(glob.glob(os.path.join(table_dir, "*.parquet")))
        ops = collections.Counter()
        changes = []
        key = None
        for f in files:
            t = pq.read_table(f)
            key = (t.schema.metadata or {}).get(b"ductstream.key", b"").decode().split(",")
            cols = ["__op", "__commit_lsn", "__seq", "__before"] + key
            for row in t.select(cols).to_pylist():
                ops[row["__op"]] += 1
                changes.append(row)
        changes.sort(key=lambda r: (r["__commit_lsn"], r["__seq"]))
        live = set()
        for c in changes:
            after = tuple(c[k] for k in key)
            before = tuple((c["__before"] or {}).get(k) for k in key)
            if c["__op"] == "delete":
                live.discard(before)
            elif c["__op"] == "truncate":
                live.clear()
            else:
                if c["__op"] == "update" and c["__before"]:
                    live.discard(before)
                live.add(after)
        expected = source.get(table)
        match = "" if expected is None else ("yes" if expected == len(live) else "NO")
        ok = ok and match != "NO"
        print(f"{table:<24}{len(files):>7}{ops['load']:>9}{ops['insert']:>9}{ops['update']:>9}"
              f"{ops['delete']:>9}"
              f"{len(live):>9}{'' if expected is None else expected:>9}  {match}")
    sample = sorted(glob.glob(os.path.join(root, "public.orders", "*.parquet")))
    if sample:
        row = pq.read_table(sample[0]).slice(0, 1).to_pylist()[0]
        print("\nfirst change of public.orders, as read back by pyarrow:")
        for k, v in row.items():
            print(f"  {k:<14} {v!r}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
