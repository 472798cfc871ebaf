#!/usr/bin/env bash
# Install everything the test suite needs and run it: bash scripts/test.sh [pytest args...]
# Creates .venv if missing, installs the project with its test extras pinned by constraints.txt,
# installs Debian's chromium for the browser tests when it is missing and we are root, then runs pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/venv.sh

ensure_venv "[test]"

if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "installing Debian's chromium for the browser tests (apt-get)"
        if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }; then
            echo "warning: could not install chromium; browser tests will not be able to run" >&2
        fi
    else
        echo "note: chromium is not installed and this is not root, so it is not installed now;" \
            "browser tests need it (as root: apt-get install chromium)" >&2
    fi
fi

# Lint and type-check first: a quick failure before the long run (ruff and mypy settings: pyproject.toml).
"$VENV/bin/ruff" check ivs_widgets tests benchmarks
"$VENV/bin/mypy"

# pytest exits 5 when it collected no tests (e.g. a -k that matches nothing): not a failure here.
status=0
"$VENV/bin/python" -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests"
    exit 0
fi
exit "$status"
