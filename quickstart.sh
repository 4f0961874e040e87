#!/usr/bin/env bash
# ringstack quick start: `./quickstart.sh run` sets up and runs the all-in-one cluster;
# `./quickstart.sh test` sets up and runs the test suite. Both install what they need into
# ./.venv (pip) and, where a real component needs one, Debian packages via apt-get.
set -euo pipefail
cd "$(dirname "$0")"
ROOT=$(pwd)
VENV=${RINGSTACK_VENV:-$ROOT/.venv}
DATA=${RINGSTACK_DATA:-$ROOT/data}

setup() {
    if [ ! -x "$VENV/bin/python" ]; then
        python3 -m venv "$VENV"
    fi
    "$VENV/bin/pip" install -q --disable-pip-version-check -e ".[test]"
}

run() {
    setup
    # The main job: the whole cluster on this machine (4 storage nodes and a proxy on
    # 127.0.0.1:8080), in the foreground until Ctrl-C; its data stays in $DATA between runs.
    exec "$VENV/bin/ringstack-aio" start --data-dir "$DATA" "$@"
}

tests() {
    setup
    local rc=0
    "$VENV/bin/python" -m pytest -q "$@" || rc=$?
    # pytest exits 5 when it collected nothing: that is a failure of the suite, not a pass.
    exit $rc
}

case "${1:-}" in
    run) shift; run "$@" ;;
    test) shift; tests "$@" ;;
    *) echo "usage: $0 run|test [pytest args]" >&2; exit 2 ;;
esac
