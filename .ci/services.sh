#!/usr/bin/env bash
# What the test suite needs from Debian on a bare machine, as root: redis-server (the Celery broker of
# tests/scaleout/test_celery_backfill.py) and chromium (the headless-browser test of the upload page,
# tests/search). Idempotent and quick when already done.
#
# The Celery test starts its OWN private redis-server (free loopback port, no persistence) and only
# needs the binary on PATH; this script also starts a shared one on 127.0.0.1:${REDIS_PORT:-6379}
# for manual runs (`dagster-celery worker start ...` with DAGSTER_CELERY_BROKER_URL=redis://127.0.0.1:6379/0).
set -euo pipefail

REDIS_PORT="${REDIS_PORT:-6379}"

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "services.sh: ${missing[*]} missing and not root: run as root or apt-get install -y ${missing[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# already answering on that port (ours from an earlier call, or the distribution's service)?
if command -v redis-cli >/dev/null 2>&1 && redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then
    echo "services.sh: redis-server $(redis-server --version | awk '{print $3}') already up on 127.0.0.1:$REDIS_PORT"
    exit 0
fi

REDIS_DIR="${TMPDIR:-/tmp}/vpr-ci-redis-$REDIS_PORT"
mkdir -p "$REDIS_DIR"
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --protected-mode yes --save '' --appendonly no \
    --dir "$REDIS_DIR" --logfile "$REDIS_DIR/redis.log" --pidfile "$REDIS_DIR/redis.pid" --daemonize yes

for _ in $(seq 1 50); do
    if redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; then
        echo "services.sh: redis-server started on 127.0.0.1:$REDIS_PORT (pid $(cat "$REDIS_DIR/redis.pid"))"
        exit 0
    fi
    sleep 0.1
done
echo "services.sh: redis-server did not answer on 127.0.0.1:$REDIS_PORT; log:" >&2
tail -n 20 "$REDIS_DIR/redis.log" >&2 || true
exit 1
