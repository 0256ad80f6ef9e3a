#!/usr/bin/env bash
# Run the container image's exact command outside Docker, the way the image
# does, and check that it starts, becomes ready and stops cleanly.
#
#   bash deploy/check-entrypoint.sh [REPO_ROOT]
#
# 1. Reads deploy/Dockerfile: the build stage's WORKDIR, COPY sources, ENV and
#    `uv ...` commands, and the final stage's ENV and CMD (exec form). Nothing
#    below is a copy of the Dockerfile, so the two cannot drift.
# 2. Stages the same files into a temporary directory and runs the same
#    `uv sync` commands there (from uv.lock, no dev dependencies, project
#    installed as a wheel), into a fresh venv in that directory.
# 3. Starts CMD from an empty directory (as the image does: the package comes
#    from the venv, not from the source tree) with only the image's ENV plus
#    UPSTREAM_EMULATOR=true AUTH_MODE=none PORT=<free port> WORKERS=1
#    HOST=127.0.0.1, polls /readyz until 200 (READY_TIMEOUT, default 20 s),
#    sends SIGTERM and requires exit status 0 within STOP_TIMEOUT (default 30 s).
# 4. Fails if the process wrote into the venv or its working directory (the
#    image's root filesystem is read-only; only /tmp is writable).
#
# Needs bash, python3 (any 3.x, to read the Dockerfile and poll), uv, and the
# Python that the Dockerfile's UV_PYTHON names. KEEP_WORKDIR=1 keeps the
# temporary directory for inspection.
set -euo pipefail

REPO_ROOT=$(cd "${1:-$(dirname "${BASH_SOURCE[0]}")/..}" && pwd)
DOCKERFILE=${DOCKERFILE:-$REPO_ROOT/deploy/Dockerfile}
READY_TIMEOUT=${READY_TIMEOUT:-20}
STOP_TIMEOUT=${STOP_TIMEOUT:-30}

say() { printf 'check-entrypoint: %s\n' "$*" >&2; }
die() { say "FAIL: $*"; exit 1; }

command -v python3 >/dev/null || die "python3 not found"
command -v uv >/dev/null || die "uv not found"
[[ -f $DOCKERFILE ]] || die "no Dockerfile at $DOCKERFILE"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/check-entrypoint.XXXXXX")
SRC=$WORK/src      # the build stage's filesystem root (COPY targets land under it)
VENV=$WORK/venv    # stands in for the image's venv
RUN_DIR=$WORK/run  # the runtime stage's (empty) WORKDIR
LOG=$WORK/server.log
mkdir -p "$SRC" "$RUN_DIR"
SERVER_PID=

cleanup() {
    if [[ -n $SERVER_PID ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ ${KEEP_WORKDIR:-0} == 1 ]]; then
        say "kept $WORK"
    else
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT

# --- 1 + 2a: read the Dockerfile, stage the build context ---------------------
# Prints bash array assignments (shell-quoted) for the steps below.
plan=$(python3 - "$DOCKERFILE" "$REPO_ROOT" "$SRC" "$VENV" <<'PY'
import json
import shlex
import shutil
import sys
from pathlib import Path

dockerfile, repo, src, venv = (Path(arg) for arg in sys.argv[1:])


def fail(message: str) -> None:
    sys.exit(f"check-entrypoint: FAIL: {dockerfile}: {message}")


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) pairs, continuation lines joined, comments dropped."""
    result: list[tuple[str, str]] = []
    current = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not current and (not line or line.startswith("#")):
            continue
        if current and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        keyword, _, rest = current.strip().partition(" ")
        result.append((keyword.upper(), rest.strip()))
        current = ""
    return result


stages: list[list[tuple[str, str]]] = []
for keyword, rest in instructions(dockerfile.read_text(encoding="utf-8")):
    if keyword == "FROM":
        stages.append([])
    elif stages:
        stages[-1].append((keyword, rest))
if not stages:
    fail("no FROM")


def strip_flags(words: list[str]) -> list[str]:
    while words and words[0].startswith("--"):
        words = words[1:]
    return words


def env_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in stage:
        if keyword == "ENV":
            for word in shlex.split(rest):
                name, sep, value = word.partition("=")
                if not sep:
                    fail(f"ENV {rest!r}: use the NAME=value form")
                env[name] = value
    return env


def uv_steps(stage: list[tuple[str, str]]) -> list[str]:
    steps = []
    for keyword, rest in stage:
        if keyword != "RUN":
            continue
        words = strip_flags(shlex.split(rest))
        for part in " ".join(shlex.quote(w) for w in words).split(" '&&' "):
            if shlex.split(part)[:1] == ["uv"]:
                steps.append(part)
    return steps


builders = [stage for stage in stages[:-1] if uv_steps(stage)]
if len(builders) != 1:
    fail("expected exactly one build stage that runs `uv ...`")
build, final = builders[0], stages[-1]

# The final stage's CMD, exec form only (a shell form would run under /bin/sh).
cmds = [rest for keyword, rest in final if keyword == "CMD"]
if not cmds:
    fail("the final stage has no CMD")
try:
    cmd = json.loads(cmds[-1])
except json.JSONDecodeError:
    fail(f"CMD {cmds[-1]} is not in exec (JSON) form")
if not (isinstance(cmd, list) and cmd and all(isinstance(w, str) for w in cmd)):
    fail(f"CMD {cmds[-1]} is not a list of strings")

build_env = env_of(build)
image_venv = build_env.get("UV_PROJECT_ENVIRONMENT")
if not image_venv:
    fail("the build stage sets no UV_PROJECT_ENVIRONMENT (the venv the image copies)")
build_env["UV_PROJECT_ENVIRONMENT"] = str(venv)

# The build stage's COPY lines (not --from=...), relative to its WORKDIR.
workdir = Path("/")
for keyword, rest in build:
    if keyword == "WORKDIR":
        workdir = workdir / rest
    elif keyword == "COPY":
        words = shlex.split(rest)
        if any(w.startswith("--from") for w in words):
            continue
        *sources, dest = strip_flags(words)
        target = src / (workdir / dest).relative_to("/")
        for source in sources:
            origin = repo / source
            if not origin.exists():
                fail(f"COPY {source}: not in {repo}")
            ignore = shutil.ignore_patterns("__pycache__", "*.py[cod]", ".*_cache")
            if origin.is_dir():
                shutil.copytree(origin, target, ignore=ignore, dirs_exist_ok=True)
            elif dest.endswith("/") or len(sources) > 1:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target / origin.name)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, target)

# The final stage's ENV, with its PATH pointed at this venv instead of the image's.
run_env = env_of(final)
path = run_env.pop("PATH", "${PATH}").replace(image_venv, str(venv))
path = path.replace("${PATH}", "/usr/local/bin:/usr/bin:/bin").replace("$PATH", "/usr/local/bin:/usr/bin:/bin")


def array(name: str, values: list[str]) -> None:
    print(f"{name}=({' '.join(shlex.quote(v) for v in values)})")


print(f"BUILD_DIR={shlex.quote(str(src / workdir.relative_to('/')))}")
array("IMAGE_CMD", cmd)
array("UV_STEPS", uv_steps(build))
array("BUILD_ENV", [f"{k}={v}" for k, v in build_env.items()])
array("RUN_ENV", [f"{k}={v}" for k, v in run_env.items()] + [f"PATH={path}"])
PY
) || die "could not read $DOCKERFILE"
eval "$plan"
say "CMD from Dockerfile: ${IMAGE_CMD[*]}"

# --- 2b: install the way the image does ---------------------------------------
for step in "${UV_STEPS[@]}"; do
    say "install: $step"
    (cd "$BUILD_DIR" && env -u VIRTUAL_ENV "${BUILD_ENV[@]}" bash -c "$step") ||
        die "install step failed: $step"
done

# --- 3: run CMD, wait for /readyz, stop it -------------------------------------
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
MARKER=$WORK/started
touch "$MARKER"
sleep 1  # so that anything written after this has a strictly newer mtime

say "start: ${IMAGE_CMD[*]} (PORT=$PORT, cwd $RUN_DIR)"
(
    cd "$RUN_DIR"
    exec env -i "${RUN_ENV[@]}" HOME=/nonexistent LANG=C.UTF-8 \
        UPSTREAM_EMULATOR=true AUTH_MODE=none PORT="$PORT" WORKERS=1 HOST=127.0.0.1 \
        "${IMAGE_CMD[@]}"
) >"$LOG" 2>&1 &
SERVER_PID=$!

show_log() { say "server output:"; sed 's/^/    /' "$LOG" >&2 || true; }

ready=0
python3 - "$PORT" "$SERVER_PID" "$READY_TIMEOUT" <<'PY' || ready=$?
import os
import sys
import time
import urllib.error
import urllib.request

port, pid, timeout = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + timeout
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        sys.exit(2)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1) as response:
            if response.status == 200:
                sys.exit(0)
    except (urllib.error.URLError, OSError):
        pass
    time.sleep(0.2)
sys.exit(1)
PY
case $ready in
    0) say "ready: GET /readyz -> 200" ;;
    2) wait "$SERVER_PID" || true; show_log; die "the process exited before it was ready" ;;
    *) show_log; die "GET /readyz did not answer 200 within ${READY_TIMEOUT}s" ;;
esac

say "stop: SIGTERM"
kill -TERM "$SERVER_PID"
deadline=$((SECONDS + STOP_TIMEOUT))
while kill -0 "$SERVER_PID" 2>/dev/null && ((SECONDS < deadline)); do
    sleep 0.2
done
if kill -0 "$SERVER_PID" 2>/dev/null; then
    show_log
    die "still running ${STOP_TIMEOUT}s after SIGTERM"
fi
status=0
wait "$SERVER_PID" || status=$?
SERVER_PID=
if ((status != 0)); then
    show_log
    die "exit status $status after SIGTERM (want 0)"
fi

# --- 4: nothing written outside /tmp ------------------------------------------
written=$(find "$VENV" "$RUN_DIR" -newer "$MARKER" -print)
if [[ -n $written ]]; then
    show_log
    die "the process wrote outside /tmp (read-only in the image):"$'\n'"$written"
fi

say "OK: ready, then exit 0 on SIGTERM; nothing written outside /tmp"
