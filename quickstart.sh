#!/usr/bin/env bash
# ringstack quick start: `./quickstart.sh run` sets up and runs the main job;
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
    # For now the main job builds a sample ring (4 devices in 4 zones, 3 replicas) and shows
    # it; the all-in-one cluster takes over this command once it exists.
    local builder="$DATA/rings/object.builder" rb="$VENV/bin/ringstack-ring-builder"
    mkdir -p "$DATA/rings"
    if [ ! -f "$builder" ]; then
        "$rb" "$builder" create 10 3 1
        for n in 1 2 3 4; do
            "$rb" "$builder" add "r1z$n-127.0.0.1:60${n}0/sdb$n" 100
        done
        "$rb" "$builder" rebalance --seed 1 || [ $? -eq 1 ]
    fi
    "$rb" "$builder"
    echo
    "$rb" "$builder" dispersion
    echo
    echo "Builder: $builder   Ring: ${builder%.builder}.ring"
    echo "Try:     $rb $builder search z1"
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
