#!/usr/bin/env bash
# A consumer of a pgstream stream over the API server's StreamService (grpcurl + jq):
# pull a batch, print each message, ack the batch, sleep when the stream is empty.
# See docs/streams.md. The server needs DUCTSTREAM_POSTGRES_DSN (the database the pgstream
# destination writes to).
#
#   ENDPOINT=localhost:8080 STREAM=orders GROUP=search examples/stream_consumer.sh
#
# Settings (environment): ENDPOINT (localhost:8080), STREAM (orders), GROUP (search), MAX (10),
# VISIBILITY seconds (30), CONSUMER (hostname-pid), SLEEP seconds between empty pulls (2),
# ONCE=1 to exit at the first empty pull, DUCTSTREAM_API_TOKEN (sent as a bearer token),
# GRPCURL (grpcurl on PATH, else .tools/bin/grpcurl from scripts/bootstrap), PAYLOAD=1 to print
# each payload (json wire format) after its line.
set -euo pipefail

ENDPOINT=${ENDPOINT:-localhost:8080}
STREAM=${STREAM:-orders}
GROUP=${GROUP:-search}
MAX=${MAX:-10}
VISIBILITY=${VISIBILITY:-30}
CONSUMER=${CONSUMER:-$(hostname)-$$}
SLEEP=${SLEEP:-2}
ONCE=${ONCE:-0}
PAYLOAD=${PAYLOAD:-0}

here=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z "${GRPCURL:-}" ]]; then
  if command -v grpcurl >/dev/null 2>&1; then GRPCURL=grpcurl; else GRPCURL="$here/.tools/bin/grpcurl"; fi
fi
command -v jq >/dev/null 2>&1 || { echo "stream_consumer.sh: jq is required" >&2; exit 1; }

args=(-plaintext)
if [[ -n "${DUCTSTREAM_API_TOKEN:-}" ]]; then
  args+=(-H "authorization: Bearer ${DUCTSTREAM_API_TOKEN}")
fi

call() {  # call METHOD JSON
  "$GRPCURL" "${args[@]}" -d "$2" "$ENDPOINT" "ductstream.v1.StreamService/$1"
}

while true; do
  request=$(jq -cn --arg s "$STREAM" --arg g "$GROUP" --argjson m "$MAX" \
    --argjson v "$VISIBILITY" --arg c "$CONSUMER" \
    '{stream: $s, consumer_group: $g, max_messages: $m, visibility_timeout_seconds: $v,
      consumer_id: $c}')
  response=$(call Pull "$request")
  count=$(jq '.messages // [] | length' <<<"$response")
  if [[ "$count" -eq 0 ]]; then
    [[ "$ONCE" == 1 ]] && exit 0
    sleep "$SLEEP"
    continue
  fi
  # Handle the messages here; whatever is not acked comes back after VISIBILITY seconds.
  jq -r '.messages[] | "id=\(.id) table=\(.namespace // "").\(.table // "") lsn=\(.lsn // "")"' \
    <<<"$response"
  if [[ "$PAYLOAD" == 1 ]]; then
    jq -r '.messages[] | .payload // "" | @base64d' <<<"$response"
  fi
  ack=$(jq -c --arg s "$STREAM" --arg g "$GROUP" \
    '{stream: $s, consumer_group: $g, ids: [.messages[].id]}' <<<"$response")
  acked=$(call Ack "$ack" | jq -r '.acked // "0"')
  echo "acked $acked of $count"
done
