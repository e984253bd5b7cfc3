#!/usr/bin/env bash
# The test command (README): installs what the tests need besides Rust, then runs them all.
# - numpy + scikit-learn in a venv under ~/.cache, for the k-means reference (crates/duckdb/tests/engine/bqml_conformance.rs)
# - the BigQuery emulator (bqemulator) in its own venv, for tests/it/bigquery_emulator.rs
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${NETSENTINEL_VENV:-$HOME/.cache/netsentinel-venv}"
if ! "$VENV/bin/python" -c "import numpy, sklearn" 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-test.txt
fi
"$VENV/bin/python" -c "import numpy, sklearn" || { echo "numpy/scikit-learn could not be installed into $VENV" >&2; exit 1; }
export NETSENTINEL_PYTHON="$VENV/bin/python"

BQEMULATOR="$(scripts/bqemulator.sh | tail -n 1)" && [[ -x "$BQEMULATOR" ]] \
  || { echo "the BigQuery emulator could not be installed (scripts/bqemulator.sh)" >&2; exit 1; }
export NETSENTINEL_BQEMULATOR="$BQEMULATOR"

cargo test --workspace --locked "$@"
