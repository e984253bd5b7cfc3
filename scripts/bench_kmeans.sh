#!/usr/bin/env bash
# Reproduces the k-means section of BENCHMARKS.md (issue 3): local k-means training against
# scikit-learn's Lloyd from the same initial centroids on the same rows, CREATE MODEL's peak
# heap, and ML.DETECT_ANOMALIES throughput against DuckDB copying the same table and
# scikit-learn scoring the same rows. Release build; ROWS/DIMS/K/SEED change the data.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/netsentinel-target}"
ROWS="${ROWS:-1000000}"
DIMS="${DIMS:-12}"
K="${K:-8}"
SEED="${SEED:-42}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

python3 -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet numpy scikit-learn threadpoolctl
PY="$WORK/venv/bin/python"

LOAD="$(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" scripts/bench_kmeans.py generate "$WORK" "$ROWS" "$DIMS" "$K" "$SEED"
cargo bench --quiet --bench kmeans -- "$WORK" "$ROWS" "$DIMS" "$K" | tee "$WORK/ours.txt"
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, where the machine sets them, pin an old OpenBLAS kernel
# that slows numpy down; the peer runs with its library's own choice.
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$PY" scripts/bench_kmeans.py compare "$WORK" "$ROWS" "$DIMS" "$K" | tee "$WORK/peer.txt"

get() { grep -h "^$1=" "$WORK/ours.txt" "$WORK/peer.txt" | cut -d= -f2; }
ratio() { printf '%.2f' "$(echo "$1 / $2" | bc -l)"; }
rate() { printf '%.0f' "$(echo "$ROWS / $1" | bc -l)"; }
ours=$(get train_seconds); theirs=$(get sklearn_train_seconds)
ours_it=$(get train_iterations); theirs_it=$(get sklearn_train_iterations)
peak=$(get create_model_peak_heap_bytes); matrix=$(get feature_matrix_bytes)
echo
echo "load average before the run: $LOAD"
echo "| measurement | netsentinel | peer | peer time ÷ ours |"
echo "|---|---|---|---|"
echo "| training, ${ROWS} × ${DIMS}, k = ${K}: total s (iterations) | $ours ($ours_it) | scikit-learn $theirs ($theirs_it) | $(ratio "$theirs" "$ours") |"
echo "| training: ms per iteration | $(printf '%.1f' "$(echo "1000 * $ours / $ours_it" | bc -l)") | $(printf '%.1f' "$(echo "1000 * $theirs / $theirs_it" | bc -l)") | |"
echo "| CREATE MODEL (read query result, train, store): s | $(get create_model_seconds) | | |"
echo "| CREATE MODEL peak heap: MB (× the ${DIMS}-feature f64 matrix) | $((peak / 1000000)) ($(ratio "$peak" "$matrix")×) | matrix $((matrix / 1000000)) | |"
echo "| ML.DETECT_ANOMALIES, aggregated (scoring alone): rows/s | $(rate "$(get detect_aggregate_seconds)") | DuckDB summing the ${DIMS} columns $(rate "$(get duckdb_aggregate_seconds)") | |"
echo "| ML.DETECT_ANOMALIES into a table: rows/s | $(rate "$(get detect_table_seconds)") | DuckDB copying the table $(rate "$(get duckdb_copy_seconds)") | |"
echo "| the same scoring in scikit-learn (transform + numpy): rows/s | $(rate "$(get detect_aggregate_seconds)") | $(rate "$(get sklearn_score_seconds)") | $(ratio "$(get sklearn_score_seconds)" "$(get detect_aggregate_seconds)") |"
echo "| centroids vs scikit-learn: max relative difference | $(get max_centroid_rel_diff) | | |"
