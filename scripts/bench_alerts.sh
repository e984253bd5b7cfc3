#!/usr/bin/env bash
# Reproduces the alerts section of BENCHMARKS.md (issue 5): the `alerts` step delivering to
# Google's Pub/Sub emulator against a bare google-cloud-pubsub Publisher sending the same
# messages, in one run. Release build. SUBSCRIBERS and MINUTES size the traffic (about half of
# the scored windows become alerts: the bench raises contamination to 0.5).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/netsentinel-target}"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
cargo bench --quiet --bench alerts -- "${SUBSCRIBERS:-300}" "${MINUTES:-30}"
