#!/usr/bin/env bash
# Start the local services the tests need, bound to 127.0.0.1, unless already running:
# PostgreSQL (own cluster, port 55432), Redis (port 56379), pcscd with the vpcd driver.
# Prints the environment to use: eval "$(scripts/services.sh)".
set -euo pipefail
cd "$(dirname "$0")/.."

PGPORT=${PORTAL_PG_PORT:-55432}
REDISPORT=${PORTAL_REDIS_PORT:-56379}
PGDATA=${PORTAL_PGDATA:-/var/tmp/portal-pg}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)

as_pg() {
  if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [[ ! -f $PGDATA/PG_VERSION ]]; then
  mkdir -p "$PGDATA"
  [[ $(id -u) -eq 0 ]] && chown postgres:postgres "$PGDATA"
  as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
fi
if ! as_pg "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
  as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w -t 60 \
    -o "-p $PGPORT -k /tmp -c listen_addresses=127.0.0.1 -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start >/dev/null
fi

if ! redis-cli -h 127.0.0.1 -p "$REDISPORT" ping >/dev/null 2>&1; then
  redis-server --bind 127.0.0.1 --port "$REDISPORT" --daemonize yes --save '' --appendonly no \
    --logfile /var/tmp/portal-redis.log >/dev/null
  for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p "$REDISPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
fi

if [[ -f scripts/pcscd.sh ]]; then
  bash scripts/pcscd.sh >/dev/null
fi

echo "export TEST_POSTGRES_URL=postgresql+psycopg://postgres@127.0.0.1:$PGPORT/postgres"
echo "export TEST_REDIS_URL=redis://127.0.0.1:$REDISPORT/0"
