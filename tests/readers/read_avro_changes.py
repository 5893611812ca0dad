#!/usr/bin/env python3
"""Independent reader for DuctStream's Avro output: reads one Avro object container file with
fastavro (logical types applied) and prints, as JSON on one line:

  {"codec": ..., "metadata": {user metadata}, "schema": writer schema, "records": [...]}

Values JSON cannot carry exactly are tagged so the C++ test can compare them exactly:
  {"$bytes": hex}, {"$decimal": str(Decimal)}, {"$datetime": isoformat}, {"$date": isoformat},
  {"$time": isoformat}, {"$float": "nan" | "inf" | "-inf"}.
"""
import datetime
import decimal
import json
import math
import sys

import fastavro


def canonical(v):
    if isinstance(v, dict):
        return {k: canonical(x) for k, x in v.items()}
    if isinstance(v, list):
        return [canonical(x) for x in v]
    if isinstance(v, (bytes, bytearray)):
        return {"$bytes": bytes(v).hex()}
    if isinstance(v, decimal.Decimal):
        return {"$decimal": str(v)}
    if isinstance(v, datetime.datetime):  # before date: datetime is a date subclass
        return {"$datetime": v.isoformat()}
    if isinstance(v, datetime.date):
        return {"$date": v.isoformat()}
    if isinstance(v, datetime.time):
        return {"$time": v.isoformat()}
    if isinstance(v, float) and not math.isfinite(v):
        return {"$float": "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")}
    return v


def main():
    with open(sys.argv[1], "rb") as f:
        reader = fastavro.reader(f)
        records = [canonical(r) for r in reader]
        metadata = {k: v for k, v in reader.metadata.items() if not k.startswith("avro.")}
        out = {
            "codec": reader.codec,
            "metadata": metadata,
            "schema": json.loads(reader.metadata["avro.schema"]),
            "records": records,
        }
    json.dump(out, sys.stdout, allow_nan=False, sort_keys=True)


if __name__ == "__main__":
    main()
