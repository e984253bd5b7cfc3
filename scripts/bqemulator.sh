#!/usr/bin/env bash
# Installs the BigQuery emulator (the `bqemulator` PyPI package) for the bigquery integration
# tests, into a venv under ~/.cache. Idempotent: a venv with the pinned versions is left alone.
# As plainly installed, bqemulator's DuckDB tries to download the `spatial` extension at start
# and fails offline; the pinned duckdb-extension-spatial wheel is imported into the emulator's
# own HOME (VENV/home) instead, which the tests set when they start it.
# Prints the path of the bqemulator executable on success.
set -euo pipefail

VENV="${NETSENTINEL_BQEMULATOR_VENV:-$HOME/.cache/netsentinel-bqemulator}"
PINS="bqemulator==1.4.0 duckdb==1.5.5 duckdb-extension-spatial==1.5.5 duckdb-extensions==1.5.5 numpy"
MARKER="$VENV/.netsentinel-pins"

if [[ -x "$VENV/bin/bqemulator" && -f "$MARKER" && "$(cat "$MARKER")" == "$PINS" ]]; then
  echo "$VENV/bin/bqemulator"
  exit 0
fi

python3 -m venv "$VENV"
# shellcheck disable=SC2086 # the pins are separate arguments
"$VENV/bin/pip" install --quiet --disable-pip-version-check $PINS >&2
mkdir -p "$VENV/home"
HOME="$VENV/home" "$VENV/bin/python" -c \
  "from duckdb_extensions import import_extension; import_extension('spatial')" >&2
"$VENV/bin/bqemulator" --help >/dev/null
echo "$PINS" > "$MARKER"
echo "$VENV/bin/bqemulator"
