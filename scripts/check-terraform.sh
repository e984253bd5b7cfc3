#!/usr/bin/env bash
# Static checks of terraform/ (run by .ci/run): formatting, and checkov's security policies with no
# failed check except ones skipped inline with a reason. Offline: `terraform init` is not needed.
# - checkov (pinned in scripts/requirements-checkov.txt) in a venv under ~/.cache, installed once
set -euo pipefail
cd "$(dirname "$0")/.."

# Outside CI a machine without terraform skips these checks; under CI that is a failure.
if ! command -v terraform >/dev/null; then
  if [ "${CI:-}" = "true" ]; then
    echo "CI needs terraform on PATH (terraform fmt)" >&2; exit 1
  fi
  echo "terraform not found: skipping the terraform checks" >&2; exit 0
fi
# No CLI configuration is needed for fmt; pointing at an empty one silences terraform's warning.
TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -recursive -diff terraform

VENV="${NETSENTINEL_CHECKOV_VENV:-$HOME/.cache/netsentinel-checkov}"
WANTED="$(sed -n 's/^checkov==//p' scripts/requirements-checkov.txt)"
if [ "$("$VENV/bin/checkov" --version 2>/dev/null || true)" != "$WANTED" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r scripts/requirements-checkov.txt \
    || { echo "checkov could not be installed into $VENV" >&2; exit 1; }
fi
# --skip-download: no Prisma Cloud lookups (this runs offline); every check runs locally.
"$VENV/bin/checkov" -d terraform --framework terraform --quiet --compact --skip-download
