#!/usr/bin/env bash
# Run @PAPER@ (profile @PROFILE@) from this bundle, offline:
#
#   ./run.sh OUT [-p name=value ...]        e.g. ./run.sh "$OUT" -p max_minutes=50
#
# 1. installs wheels/ with pip --no-index --no-deps into a scratch folder on PYTHONPATH (the node's own
#    torch, numpy, ... stay the ones used), 2. runs `python -m srcore.reproduce --paper @PAPER@
#    --profile @PROFILE@` on data/ with the bundle's parameters, then yours, 3. leaves in OUT (made if
#    needed): run.log (everything printed, from the first line), @PAPER@.ipynb (the executed notebook),
#    @PAPER@_results.tar.gz (results folder, training logs, notebook), @PAPER@_weights.tar.gz (final
#    float16 weights of the trained networks; with SPLIT_MIB, archives of at most that many MiB:
#    @PAPER@_weights_2.tar.gz, ...) and run.json (exit status, file sizes). Step 3 also runs when the
#    job is stopped (TERM, INT) or RUN_LIMIT_S passes: the notebook's kernel is sent TERM (the Trainer
#    checkpoints and stops), the run gets GRACE_S seconds (default 120) to finish, and whatever it
#    wrote is packed.
#
# Environment: PYTHON (default python3, the one with torch), WORK (scratch folder; default a new
# folder under ${TMPDIR:-/tmp}), RUN_LIMIT_S (stop the run after this many seconds; default none),
# GRACE_S (seconds a stopped run gets to finish; default 120), SPLIT_MIB (default: @SPLIT_MIB@, none
# when empty). Keep RUN_LIMIT_S + GRACE_S + ~20 s under the job's own time limit.
set -uo pipefail
PAPER=@PAPER@
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=${1:?usage: run.sh OUT [-p name=value ...]}
shift
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd) || exit 2
LOG="$OUT/run.log"
: >"$LOG"
exec 3>&1                        # the console
exec >>"$LOG" 2>&1               # every line goes to the log first: a killed job still leaves it
tail -n +1 -f --pid=$$ "$LOG" >&3 2>/dev/null &
PYTHON=${PYTHON:-python3}
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/srcore_${PAPER}_XXXX")}
mkdir -p "$WORK" && cp "$HERE/bundle.json" "$WORK/bundle.json"
echo "== $(date -u +%FT%TZ) bundle of $PAPER (commit @COMMIT@) on $(hostname); work in $WORK"

CHILD=
FINISHED=
finish() {  # $1: why. Stop the run (TERM, then KILL after 30 s) and pack what it wrote.
    [ -n "$FINISHED" ] && return
    FINISHED=1
    local why=$1
    [ -n "${WATCHDOG:-}" ] && kill "$WATCHDOG" 2>/dev/null
    if [ -n "$CHILD" ] && kill -0 "$CHILD" 2>/dev/null; then
        local kids
        kids=$(ps -o pid= --ppid "$CHILD" 2>/dev/null)     # the notebook's kernel
        # TERM to the kernel first: the Trainer checkpoints and stops, and the notebook may still
        # evaluate and write what it trained; after GRACE_S everything is stopped
        echo "== $(date -u +%FT%TZ) $why: stopping the run (TERM to the kernel, then ${GRACE_S:-120} s to finish)"
        kill -TERM ${kids:-$CHILD} 2>/dev/null
        for _ in $(seq "${GRACE_S:-120}"); do kill -0 "$CHILD" 2>/dev/null || break; sleep 1; done
        kill -TERM $kids "$CHILD" 2>/dev/null && sleep 3
        kill -KILL $kids "$CHILD" 2>/dev/null
    fi
    echo "== $(date -u +%FT%TZ) packing results into $OUT ($why)"
    (cd "$HERE/code" && PYTHONPATH="$HERE/code" "$PYTHON" -m srcore.bundle --paper "$PAPER" \
        --collect "$WORK" "$OUT" --status "$why") || echo "== packing failed"
    ls -l "$OUT"
}
trap 'finish "stopped (TERM)"; exit 143' TERM
trap 'finish "stopped (INT)"; exit 130' INT

want=@PYTHON@
have=$("$PYTHON" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")') || exit 2
if [ "$have" != "$want" ]; then
    echo "error: this bundle's wheels are for Python $want, $PYTHON is $have (bundle again with --python-version $have)"
    exit 2
fi
"$PYTHON" -c 'import torch; print("torch", torch.__version__, "cuda" if torch.cuda.is_available() else "no cuda")' || exit 2

tic=$(date +%s)
# --no-deps: the bundle holds the whole resolution minus the node's packages; the host's pip
# configuration (an index, constraints) has no business here
PIP_CONFIG_FILE=/dev/null "$PYTHON" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir \
    --disable-pip-version-check --target "$WORK/site" "$HERE"/wheels/*.whl || { echo "error: wheel install failed"; exit 2; }
echo "== wheels installed in $(( $(date +%s) - tic )) s"

export PYTHONPATH="$HERE/code:$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
export SRCORE_DATA="$HERE/data" SRCORE_WEIGHTS="$HERE/weights" SRCORE_COMMIT=@COMMIT@
export TORCH_HOME="$WORK/torch" MPLBACKEND=Agg PYTHONUNBUFFERED=1 JUPYTER_PLATFORM_DIRS=1
export JUPYTER_RUNTIME_DIR="$WORK/jupyter" IPYTHONDIR="$WORK/ipython" PATH="$WORK/site/bin:$PATH"
export SRCORE_CACHE="${SRCORE_CACHE:-$WORK/cache}"   # srcore's LR cache: scratch, not the node's home
export SPLIT_MIB="${SPLIT_MIB-@SPLIT_MIB@}"
mkdir -p "$SRCORE_WEIGHTS"
WATCHDOG=
if [ -n "${RUN_LIMIT_S:-}" ]; then
    (sleep "$RUN_LIMIT_S" && kill -TERM $$) 2>/dev/null &
    WATCHDOG=$!
fi

cd "$HERE/code"
"$PYTHON" -m srcore.reproduce --paper "$PAPER" --profile @PROFILE@ --out-root "$WORK/runs" @PARAMS@ "$@" &
CHILD=$!
wait "$CHILD"
rc=$?
CHILD=
echo "== $(date -u +%FT%TZ) srcore.reproduce exited with $rc after $(( $(date +%s) - tic )) s"
finish "exit $rc"
exit "$rc"
