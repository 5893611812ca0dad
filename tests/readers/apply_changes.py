#!/usr/bin/env python3
"""Independent reader for the snapshot tests (tests/e2e/snapshot_test.cc).

Reads every Parquet change file of one table folder with pyarrow, applies the changes per key in
(__commit_lsn, __seq) order -- load rows of a snapshot, then the stream -- and prints a JSON
summary of the resulting table, which the C++ test compares with the source:

  apply_changes.py FOLDER KEY COLUMN...

{"rows": final row count,
 "md5": md5 of "k:c1:c2,..." over the final rows in key order (NULL as "NULL"), the same
        string the test builds in SQL with string_agg,
 "ops": {op: count}, "load_duplicate_keys": keys loaded more than once,
 "load_and_insert_keys": keys that were both loaded and inserted by the stream}
"""
import collections
import hashlib
import json
import pathlib
import sys

import pyarrow.parquet as pq


def main():
    folder, key, columns = pathlib.Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
    changes = []
    for path in sorted(folder.glob("*.parquet")):
        table = pq.read_table(path)
        ops = table.column("__op").to_pylist()
        commit = table.column("__commit_lsn").to_pylist()
        seq = table.column("__seq").to_pylist()
        after = {c: table.column(c).to_pylist() for c in [key] + columns}
        before = table.column("__before").to_pylist()
        for i, op in enumerate(ops):
            row = {c: after[c][i] for c in after}
            changes.append((commit[i], seq[i], op, row, before[i]))
    changes.sort(key=lambda c: (c[0], c[1]))

    state = {}
    counts = collections.Counter()
    loaded = collections.Counter()
    inserted = set()
    for _, _, op, row, before in changes:
        counts[op] += 1
        if op == "delete":
            state.pop(before[key], None)
            continue
        if op == "truncate":
            state.clear()
            continue
        if op == "update" and before is not None and before.get(key) is not None:
            state.pop(before[key], None)  # the key changed
        if op == "load":
            loaded[row[key]] += 1
        if op == "insert":
            inserted.add(row[key])
        state[row[key]] = row

    def text(v):
        return "NULL" if v is None else str(v)

    joined = ",".join(
        ":".join(text(state[k][c]) for c in [key] + columns) for k in sorted(state)
    )
    print(
        json.dumps(
            {
                "rows": len(state),
                "md5": hashlib.md5(joined.encode()).hexdigest(),
                "ops": dict(counts),
                "load_duplicate_keys": sum(1 for n in loaded.values() if n > 1),
                "load_and_insert_keys": len(inserted & set(loaded)),
            }
        )
    )


if __name__ == "__main__":
    main()
