#!/usr/bin/env bash
# Creates a flow through the gRPC API with grpcurl and the local proto files, and starts it
# (start_immediately). The payload is the proto JSON form of a flow: enums are written
# WIRE_FORMAT_PARQUET, ENDPOINT_TYPE_POSTGRES, ... (examples/flows/*.json hold the same flows in
# lowercase form; `ductstream-admin flow create -file` reads those directly).
#
#   examples/grpc/create_flow.sh
#
# Environment (all optional):
#   DUCTSTREAM_ENDPOINT   API server address (default localhost:8080); plaintext gRPC
#   DUCTSTREAM_API_TOKEN  sent as `authorization: Bearer <token>` when set
#   GRPCURL               grpcurl binary (default: grpcurl on PATH, else .tools/bin/grpcurl, which
#                         scripts/bootstrap installs)
#   GRPCURL_FLAGS         transport flags (default -plaintext; e.g. "-cacert ca.pem" for TLS)
#   FLOW_NAME             default postgres-to-file
#   SOURCE_DSN            source database (default postgres://postgres@localhost:5432/app?sslmode=disable)
#   SLOT, PUBLICATION     default ductstream_slot, ductstream_pub
#   WIRE_FORMAT           WIRE_FORMAT_ARROW|PARQUET|AVRO|PROTO|JSON (default WIRE_FORMAT_PARQUET)
#   OUT_DIR               directory the file destination writes to (default ./out)
#   START                 true|false: start_immediately (default true)
#
# Prints the created flow as grpcurl shows it (proto JSON, with the server-assigned "id").
set -euo pipefail
cd "$(dirname "$0")/../.."

endpoint=${DUCTSTREAM_ENDPOINT:-localhost:8080}
grpcurl=${GRPCURL:-$(command -v grpcurl || echo .tools/bin/grpcurl)}
read -r -a transport <<<"${GRPCURL_FLAGS:--plaintext}"
headers=()
if [ -n "${DUCTSTREAM_API_TOKEN:-}" ]; then
  headers=(-H "authorization: Bearer ${DUCTSTREAM_API_TOKEN}")
fi

# JSON string escaping for the values taken from the environment.
json() {
  local s=${1//\\/\\\\}
  s=${s//\"/\\\"}
  printf '"%s"' "$s"
}

format=${WIRE_FORMAT:-WIRE_FORMAT_PARQUET}
payload=$(cat <<JSON
{
  "flow": {
    "name": $(json "${FLOW_NAME:-postgres-to-file}"),
    "wire_format": $(json "$format"),
    "parallelism": 1,
    "source": {
      "name": "pg-source",
      "type": "ENDPOINT_TYPE_POSTGRES",
      "options": {
        "dsn": $(json "${SOURCE_DSN:-postgres://postgres@localhost:5432/app?sslmode=disable}"),
        "slot": $(json "${SLOT:-ductstream_slot}"),
        "publication": $(json "${PUBLICATION:-ductstream_pub}"),
        "batch_size": "500",
        "batch_timeout": "1s",
        "status_interval": "10s",
        "create_slot": "true"
      }
    },
    "destinations": [
      {
        "name": "local-files",
        "type": "ENDPOINT_TYPE_FILE",
        "options": {
          "path": $(json "${OUT_DIR:-./out}")
        }
      }
    ]
  },
  "start_immediately": ${START:-true}
}
JSON
)

"$grpcurl" "${transport[@]}" "${headers[@]}" \
  -import-path proto -proto ductstream/v1/flow.proto \
  -d @ "$endpoint" ductstream.v1.FlowService/CreateFlow <<<"$payload"
