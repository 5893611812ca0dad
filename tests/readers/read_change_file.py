#!/usr/bin/env python3
"""Independent reader for the encoder tests (src/ductstream/codec/codec_test.cc).

Reads one encoded file of change records with a library we did not write and prints a canonical
JSON summary on stdout, which the C++ test compares value by value:

  read_change_file.py arrow|parquet|json|proto PATH

arrow/parquet (pyarrow): {"schema_metadata", "fields": [{name, type, nullable, metadata,
  children (struct fields: name, type, metadata)}], "num_rows", "row_groups" (parquet),
  "compression" (parquet), "columns": {name: [canonical values]}}. Canonical values: timestamps,
  times and dates as their raw integers (so ±infinity sentinels and microseconds compare
  exactly), floats as numbers or "NaN"/"Infinity"/"-Infinity", decimals as exact strings, binary
  as hex, intervals as [months, days, nanoseconds], lists as lists, structs as objects, maps as
  [[key, value], ...].
json (json module, strict: NaN/Infinity literals rejected): {"lines": [parsed objects],
  "raw_lines": [the text of each line]}.
proto (protobuf runtime; the Python module is generated now by the system protoc from
  proto/ductstream/v1, nothing generated is kept): the Batch as a dict, with key/before_json/
  after_json parsed as JSON and also kept raw ("key_raw", ...).

Exits non-zero (with a message on stderr) when the file cannot be read.
"""
import json
import math
import pathlib
import shutil
import subprocess
import sys
import tempfile

REPO = pathlib.Path(__file__).resolve().parents[2]


def canon_float(v):
    if v is None:
        return None
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    return v


def canon(arr):
    """Canonical Python values of a pyarrow Array."""
    import pyarrow as pa

    t = arr.type
    if pa.types.is_timestamp(t) or pa.types.is_time64(t) or pa.types.is_duration(t):
        return arr.cast(pa.int64()).to_pylist()
    if pa.types.is_date32(t) or pa.types.is_time32(t):
        return arr.cast(pa.int32()).to_pylist()
    if pa.types.is_floating(t):
        return [canon_float(v) for v in arr.to_pylist()]
    if pa.types.is_decimal(t):
        return [None if v is None else str(v) for v in arr.to_pylist()]
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return [None if v is None else v.hex() for v in arr.to_pylist()]
    if t == pa.month_day_nano_interval():
        return [None if v is None else [v.months, v.days, v.nanoseconds] for v in arr.to_pylist()]
    if pa.types.is_map(t):
        out = []
        for i in range(len(arr)):
            if not arr[i].is_valid:
                out.append(None)
                continue
            entries = arr[i].values  # struct<key, value>
            keys = canon(entries.field(0))
            items = canon(entries.field(1))
            out.append([[k, v] for k, v in zip(keys, items)])
        return out
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return [canon(arr[i].values) if arr[i].is_valid else None for i in range(len(arr))]
    if pa.types.is_struct(t):
        # flatten() applies the struct's offset and validity to the children.
        children = {t.field(i).name: canon(child) for i, child in enumerate(arr.flatten())}
        return [
            {name: values[i] for name, values in children.items()} if arr[i].is_valid else None
            for i in range(len(arr))
        ]
    return arr.to_pylist()


def metadata_dict(md):
    if not md:
        return {}
    return {k.decode(): v.decode() for k, v in md.items() if not k.startswith(b"ARROW:")}


def type_name(t):
    """str(type), without the names Parquet gives nested fields: a list's element is "item" in
    Arrow and "element" in Parquet, and pyarrow names a map read from Parquet after its column.
    Both are the same logical type."""
    import pyarrow as pa

    if pa.types.is_list(t):
        suffix = "" if t.value_field.nullable else " not null"
        return f"list<item: {type_name(t.value_type)}{suffix}>"
    if pa.types.is_map(t):
        return f"map<{type_name(t.key_type)}, {type_name(t.item_type)}>"
    if pa.types.is_struct(t):
        inner = ", ".join(
            f"{f.name}: {type_name(f.type)}{'' if f.nullable else ' not null'}" for f in t)
        return f"struct<{inner}>"
    return str(t)


def describe_field(f):
    import pyarrow as pa

    out = {
        "name": f.name,
        "type": type_name(f.type),
        "nullable": f.nullable,
        "metadata": metadata_dict(f.metadata),
    }
    if pa.types.is_struct(f.type):
        out["children"] = [describe_field(f.type.field(i)) for i in range(f.type.num_fields)]
    return out


def read_arrow_like(fmt, path):
    import pyarrow as pa
    import pyarrow.ipc as ipc
    import pyarrow.parquet as pq

    extra = {}
    if fmt == "arrow":
        with pa.OSFile(path, "rb") as source:
            reader = ipc.open_stream(source)
            batches = list(reader)
            schema = reader.schema
        if len(batches) != 1:
            raise SystemExit(f"expected one record batch, got {len(batches)}")
        table = pa.Table.from_batches(batches, schema=schema)
    else:
        pf = pq.ParquetFile(path)
        extra["row_groups"] = pf.metadata.num_row_groups
        extra["compression"] = sorted(
            {
                pf.metadata.row_group(g).column(c).compression
                for g in range(pf.metadata.num_row_groups)
                for c in range(pf.metadata.num_columns)
            }
        )
        table = pf.read()
    table = table.combine_chunks()
    return {
        "schema_metadata": metadata_dict(table.schema.metadata),
        "fields": [describe_field(f) for f in table.schema],
        "num_rows": table.num_rows,
        "columns": {
            name: canon(table.column(name).chunk(0) if table.column(name).num_chunks else
                        pa.array([], table.column(name).type))
            for name in table.column_names
        },
        **extra,
    }


def reject_constant(name):
    raise ValueError(f"non-standard JSON literal {name}")


def read_json(path):
    data = pathlib.Path(path).read_bytes().decode("utf-8")  # strict: invalid UTF-8 fails
    if data and not data.endswith("\n"):
        raise SystemExit("the last line does not end in a newline")
    raw_lines = data.split("\n")[:-1] if data else []
    lines = []
    for n, line in enumerate(raw_lines):
        value = json.loads(line, parse_constant=reject_constant)
        if not isinstance(value, dict):
            raise SystemExit(f"line {n + 1} is not a JSON object")
        lines.append(value)
    return {"lines": lines, "raw_lines": raw_lines}


def read_proto(path):
    protoc = shutil.which("protoc")
    if protoc is None:
        raise SystemExit("protoc not found in PATH")
    with tempfile.TemporaryDirectory() as out:
        subprocess.run(
            [protoc, f"--proto_path={REPO / 'proto'}", f"--python_out={out}",
             "ductstream/v1/types.proto", "ductstream/v1/data.proto"],
            check=True)
        sys.path.insert(0, out)
        from ductstream.v1 import data_pb2, types_pb2  # noqa: E402

        batch = data_pb2.Batch()
        batch.ParseFromString(pathlib.Path(path).read_bytes())

    def parse(raw):
        return json.loads(raw.decode("utf-8"), parse_constant=reject_constant)

    schema = batch.schema
    return {
        "schema": {
            "name": schema.name,
            "namespace": schema.namespace,
            "version": schema.version,
            "columns": [
                {"name": c.name, "type": c.type, "nullable": c.nullable, "arrow_type": c.arrow_type}
                for c in schema.columns
            ],
            "key_columns": list(schema.key_columns),
        },
        "records": [
            {
                "table": r.table,
                "operation": r.operation,
                "key": parse(r.key),
                "key_raw": r.key.decode("utf-8"),
                "before": parse(r.before_json),
                "before_raw": r.before_json.decode("utf-8"),
                "after": parse(r.after_json),
                "after_raw": r.after_json.decode("utf-8"),
                "timestamp_unix_millis": r.timestamp_unix_millis,
                "schema_version": r.schema_version,
                "unchanged": list(r.unchanged),
                "lsn": r.lsn,
                "commit_lsn": r.commit_lsn,
                "xid": r.xid,
                "seq": r.seq,
                "exact": dict(r.exact),
            }
            for r in batch.records
        ],
        "checkpoint": {
            "lsn": batch.checkpoint.lsn,
            "timestamp_unix_millis": batch.checkpoint.timestamp_unix_millis,
        },
        "wire_format": types_pb2.WireFormat.Name(batch.wire_format),
    }


def main():
    if len(sys.argv) != 3:
        raise SystemExit("usage: read_change_file.py arrow|parquet|json|proto PATH")
    fmt, path = sys.argv[1], sys.argv[2]
    if fmt in ("arrow", "parquet"):
        out = read_arrow_like(fmt, path)
    elif fmt == "json":
        out = read_json(path)
    elif fmt == "proto":
        out = read_proto(path)
    else:
        raise SystemExit(f"unknown format {fmt}")
    # allow_nan=False: every value must already be canonical JSON.
    json.dump(out, sys.stdout, allow_nan=False, ensure_ascii=False)


if __name__ == "__main__":
    main()
