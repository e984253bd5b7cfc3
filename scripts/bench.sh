#!/usr/bin/env bash
# Reproduces BENCHMARKS.md: ingest throughput against DuckDB's own JSON reader on the same file,
# and the demo's wall time at 1M events. Release build; takes a few minutes after the build.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/netsentinel-target}"
EVENTS="${EVENTS:-1000000}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

cargo build --release --quiet
BIN="$CARGO_TARGET_DIR/release/netsentinel"

# The peer: DuckDB's own newline-delimited JSON reader, same DuckDB release as the bundled one.
python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet duckdb==2.0.0

now() { date +%s.%N; }
elapsed() { echo "$2 - $1" | bc; }

mkdir -p "$WORK/project"
cp pipelines.yaml "$WORK/project/"
cp -r sql "$WORK/project/"
DATA="$WORK/netlog.jsonl"
"$BIN" -q generate --seed 42 --events "$EVENTS" --out "$DATA"
SIZE_MB=$(( $(stat -c %s "$DATA") / 1000000 ))

t0=$(now)
"$BIN" -q --project-dir "$WORK/project" ingest "$DATA" > /dev/null
t1=$(now)
ours=$(elapsed "$t0" "$t1")

t0=$(now)
"$WORK/venv/bin/python" - "$DATA" "$WORK/peer.duckdb" <<'PY'
import sys, duckdb
con = duckdb.connect(sys.argv[2])
con.execute("CREATE TABLE events AS SELECT * FROM read_json(?, format = 'newline_delimited')", [sys.argv[1]])
print(con.execute("SELECT COUNT(*) FROM events").fetchone()[0], file=sys.stderr)
PY
t1=$(now)
peer=$(elapsed "$t0" "$t1")

rm -rf "$WORK/project/.netsentinel"
t0=$(now)
"$BIN" -q --project-dir "$WORK/project" demo --events "$EVENTS" > "$WORK/demo.txt"
t1=$(now)
demo=$(elapsed "$t0" "$t1")

rate() { printf '%.0f' "$(echo "$EVENTS / $1" | bc -l)"; }
echo "| measurement | time (s) | events/s |"
echo "|---|---|---|"
echo "| netsentinel ingest, ${EVENTS} events (${SIZE_MB} MB JSONL): parse, validate, dedupe, load | $ours | $(rate "$ours") |"
echo "| DuckDB 2.0.0 read_json into a table, same file (no validation, no dedupe) | $peer | $(rate "$peer") |"
echo "| netsentinel demo --events ${EVENTS} (generate, ingest, train, detect) | $demo | |"
grep -E "scored|ingested" "$WORK/demo.txt"
