#!/usr/bin/env bash
# make run: a demonstration on a fresh ./data. Starts a worker on the embedded
# NATS JetStream server with deployments/local/gdexport.yaml, publishes the
# sample findings, and keeps the worker running until Ctrl-C.
set -euo pipefail
bin=${GDEXPORT_BIN:-./bin/gdexport}
samples=../shared/samples
[ -d "$samples" ] || samples=testing/testdata/samples
rm -rf ./data
"$bin" run --config deployments/local/gdexport.yaml &
worker=$!
trap 'kill -TERM $worker 2>/dev/null; wait $worker; exit 0' INT TERM
# Publish only into this worker's own server: wait until it is ready, and
# stop if it could not start (a busy port, a bad configuration).
for _ in $(seq 1 150); do
  if ! kill -0 "$worker" 2>/dev/null; then
    wait "$worker"; exit $?
  fi
  "$bin" healthcheck --config deployments/local/gdexport.yaml --ready >/dev/null 2>&1 && break
  sleep 0.2
done
files=()
for f in "$samples"/*.json "$samples"/*.jsonl; do
  [ -e "$f" ] || continue
  case "$(basename "$f")" in filter_*) continue ;; esac
  files+=("$f")
done
"$bin" publish --wait 30s "${files[@]}" || echo "publish: some inputs were refused (see above)"
cat <<EOF
worker running; objects appear under ./data/export/AWSLogs/<account>/GuardDuty/<region>/YYYY/MM/DD/
within seconds (newFindingDelay 5s), events on NATS subject guardduty.events.<region>.<account>.
Publish more from another terminal:  $bin publish FILE...   or   $bin publish --generate 1000
Ctrl-C to stop.
EOF
wait $worker
