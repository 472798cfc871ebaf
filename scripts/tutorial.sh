#!/usr/bin/env bash
# Install the kit and open the tutorial notebooks in JupyterLab: bash scripts/tutorial.sh [jupyter lab args...]
# Everything runs against the local IVS Chat sandbox the notebooks start: no AWS account needed.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh

ensure_venv "[tutorial]"

args=()
if [ "$(id -u)" -eq 0 ]; then
    args+=(--allow-root)  # JupyterLab refuses to run as root without it (containers, CI machines)
fi
exec "$VENV/bin/jupyter" lab "${args[@]}" "$@" notebooks/
