# Sourced by tutorial.sh and test.sh: make .venv (if missing) and install the project into it,
# pinned by constraints.txt. Skips pip when nothing it depends on has changed since the last run.
#   ensure_venv EXTRAS   e.g. ensure_venv "" or ensure_venv "[test]"

VENV="$PWD/.venv"

find_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3.11 python3; do
        if [ -n "$candidate" ] && command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return
        fi
    done
    echo "error: Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)" >&2
    return 1
}

ensure_venv() {
    local extras="$1" python stamp
    if [ ! -x "$VENV/bin/python" ]; then
        python="$(find_python)"
        echo "creating $VENV with $("$python" --version)"
        "$python" -m venv "$VENV"
    fi
    # What was installed is recorded by hash: a changed pyproject.toml or constraints.txt reinstalls.
    stamp="$(cat pyproject.toml constraints.txt | sha256sum | cut -c1-16)$extras"
    if [ "$(cat "$VENV/.ivs-installed" 2>/dev/null)" != "$stamp" ]; then
        echo "installing ivs-widgets$extras and its pinned dependencies into $VENV (quiet: only errors are shown)"
        "$VENV/bin/python" -m pip install -qq --disable-pip-version-check \
            -c constraints.txt -e ".$extras"
        echo "$stamp" >"$VENV/.ivs-installed"
    fi
}
