#!/usr/bin/env python3
"""Independent reader for the Arrow smoke test: reads a Parquet or Arrow IPC file with pyarrow and
prints its schema and values as JSON, in a canonical form the C++ test compares against."""
import json
import sys

import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq


def canon(column: pa.ChunkedArray):
    t = column.type
    if pa.types.is_timestamp(t) or pa.types.is_date32(t):
        return column.cast(pa.int64() if pa.types.is_timestamp(t) else pa.int32()).to_pylist()
    values = column.to_pylist()
    if pa.types.is_floating(t):
        return [None if v is None else repr(v) for v in values]
    if pa.types.is_decimal(t):
        return [None if v is None else str(v) for v in values]
    if pa.types.is_binary(t):
        return [None if v is None else v.hex() for v in values]
    return values


def type_name(t: pa.DataType) -> str:
    # Parquet names a list's child "element", Arrow "item": the same type either way.
    if pa.types.is_list(t):
        return f"list<{type_name(t.value_type)}>"
    return str(t)


def main() -> None:
    path, fmt = sys.argv[1], sys.argv[2]
    if fmt == "parquet":
        table = pq.read_table(path)
    elif fmt == "ipc":
        with pa.memory_map(path) as source:
            table = ipc.open_file(source).read_all()
    else:
        raise SystemExit(f"unknown format {fmt}")
    out = {
        "num_rows": table.num_rows,
        "types": {f.name: type_name(f.type) for f in table.schema},
        "columns": {name: canon(table.column(name)) for name in table.column_names},
    }
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
