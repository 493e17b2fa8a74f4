#!/bin/sh
# make demo: run the bundled asyncio demo app and watch it with aiocopd for a few seconds.
set -eu
AIOCOPD=${1:-build/aiocopd}
PYTHON=${PYTHON:-/usr/bin/python3.11}
SECONDS_TO_WATCH=${DEMO_SECONDS:-6}

if [ "$(id -u)" -ne 0 ]; then
	echo "make demo: aiocopd loads BPF programs; run it as root (sudo make demo)" >&2
	exit 1
fi
"$PYTHON" examples/demo_app.py $((SECONDS_TO_WATCH + 5)) &
APP=$!
trap 'kill $APP 2>/dev/null || true' EXIT INT TERM
sleep 1
echo "== sudo aiocopd -p $APP -d $SECONDS_TO_WATCH   (threshold 30 ms)" >&2
"$AIOCOPD" -p "$APP" -d "$SECONDS_TO_WATCH"
echo "== the same, as JSON lines (aiocopd -p $APP --json -d 2), first report:" >&2
"$AIOCOPD" -p "$APP" --json -d 2 | head -n 1
