#!/usr/bin/env python3
"""Independent reader for the Avro smoke test: reads an Avro object container file with fastavro
and prints its writer schema name and records as JSON."""
import json
import sys

import fastavro

with open(sys.argv[1], "rb") as f:
    reader = fastavro.reader(f)
    records = [{k: (v.hex() if isinstance(v, bytes) else v) for k, v in r.items()} for r in reader]
    json.dump({"schema_name": reader.writer_schema["name"], "records": records}, sys.stdout)
