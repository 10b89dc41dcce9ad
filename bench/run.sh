#!/usr/bin/env bash
# One command for the side-by-side benchmark (reference Node.js chat vs tete).
# Examples:
#   bench/run.sh --quick --only reference
#   bench/run.sh --flood-env TETE_FLOOD_RATE=1000000
# See bench/README.md and `bench/run.sh --help`.
set -euo pipefail
exec python3 "$(dirname "$0")/run.py" "$@"
