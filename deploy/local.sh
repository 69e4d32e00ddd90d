#!/usr/bin/env bash
# The production shape on this machine, from Debian packages, in its own state folder and ports:
# PostgreSQL, Redis (with a password, append-only), gunicorn on a unix socket, RQ workers, the
# scheduler, nginx with TLS (a self-signed certificate made here). Idempotent and quiet.
#
#   deploy/local.sh up | down | status | env
#   deploy/local.sh db-restart | redis-stop | redis-start | workers-stop | workers-start | reload
#
# Settings (environment): PORTAL_DEPLOY_DIR (/var/tmp/portal-deploy), PORTAL_DEPLOY_PG_PORT (55442),
# PORTAL_DEPLOY_REDIS_PORT (56389), PORTAL_DEPLOY_HTTPS_PORT (8443), PORTAL_DEPLOY_HTTP_PORT (8080),
# PORTAL_DEPLOY_WEB_WORKERS (2), PORTAL_DEPLOY_THREADS (8), PORTAL_DEPLOY_RQ_WORKERS (2),
# PORTAL_DEPLOY_HOUSEHOLDS (200); PORTAL_DEPLOY_EXTRA_ENV: lines appended to the env file.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
VENV=$ROOT/.venv/bin

STATE=${PORTAL_DEPLOY_DIR:-/var/tmp/portal-deploy}
PGPORT=${PORTAL_DEPLOY_PG_PORT:-55442}
REDISPORT=${PORTAL_DEPLOY_REDIS_PORT:-56389}
HTTPS_PORT=${PORTAL_DEPLOY_HTTPS_PORT:-8443}
HTTP_PORT=${PORTAL_DEPLOY_HTTP_PORT:-8080}
WEB_WORKERS=${PORTAL_DEPLOY_WEB_WORKERS:-2}
THREADS=${PORTAL_DEPLOY_THREADS:-8}
RQ_WORKERS=${PORTAL_DEPLOY_RQ_WORKERS:-2}
HOUSEHOLDS=${PORTAL_DEPLOY_HOUSEHOLDS:-200}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
PGDATA=$STATE/pg
RUN=$STATE/run
LOG=$STATE/log
ENVFILE=$STATE/portal.env

as_pg() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
say() { [[ -n ${PORTAL_DEPLOY_QUIET:-} ]] || echo "deploy-local: $*"; }
alive() { [[ -f $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
load_env() { set -a; source "$ENVFILE"; set +a; }

secrets() {
  mkdir -p "$STATE" "$RUN" "$LOG" "$STATE/outbox" "$STATE/metrics" "$STATE/attachments"
  chmod 711 "$STATE"
  if [[ ! -f $ENVFILE ]]; then
    local dbpw redispw
    dbpw=$(python3 -c 'import secrets;print(secrets.token_hex(24))')
    redispw=$(python3 -c 'import secrets;print(secrets.token_hex(24))')
    umask 077
    cat >"$ENVFILE" <<ENV
# made by deploy/local.sh: secrets for this machine's deploy-local only
PORTAL_CONFIG=production
SECRET_KEY=$(python3 -c 'import secrets;print(secrets.token_urlsafe(48))')
VAULT_KEY=$(python3 -c 'import os,base64;print(base64.b64encode(os.urandom(32)).decode())')
PORTAL_DB_PASSWORD=$dbpw
PORTAL_REDIS_PASSWORD=$redispw
DATABASE_URL=postgresql+psycopg://portal:$dbpw@127.0.0.1:$PGPORT/portal
REDIS_URL=redis://:$redispw@127.0.0.1:$REDISPORT/0
RATELIMIT_STORAGE_URI=redis://:$redispw@127.0.0.1:$REDISPORT/1
PUBLIC_ORIGIN=https://127.0.0.1:$HTTPS_PORT
PROXY_COUNT=1
MAIL_BACKEND=file
MAIL_OUTBOX_DIR=$STATE/outbox
VAPID_PRIVATE_KEY_FILE=$STATE/vapid_private.pem
PREFILING_ATTACHMENT_DIR=$STATE/attachments
PROMETHEUS_MULTIPROC_DIR=$STATE/metrics
GUNICORN_BIND=unix:$RUN/gunicorn.sock
GUNICORN_WORKERS=$WEB_WORKERS
GUNICORN_THREADS=$THREADS
GUNICORN_PIDFILE=$RUN/gunicorn.pid
GUNICORN_ERRORLOG=$LOG/gunicorn.log
ENV
    if [[ -n ${PORTAL_DEPLOY_EXTRA_ENV:-} ]]; then printf '%s\n' "$PORTAL_DEPLOY_EXTRA_ENV" >>"$ENVFILE"; fi
    umask 022
  fi
}

postgres_up() {
  if [[ ! -f $PGDATA/PG_VERSION ]]; then
    mkdir -p "$PGDATA"
    [[ $(id -u) -eq 0 ]] && chown postgres:postgres "$PGDATA" "$RUN"
    as_pg "$PGBIN/initdb" -D "$PGDATA" -U postgres --auth-local=peer --auth-host=scram-sha-256 \
      -E UTF8 --locale=C.UTF-8 >/dev/null
  fi
  [[ $(id -u) -eq 0 ]] && chown postgres:postgres "$RUN"
  chmod 755 "$RUN"
  if ! as_pg "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w -t 60 \
      -o "-p $PGPORT -k $RUN -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
  fi
  if ! as_pg "$PGBIN/psql" -h "$RUN" -p "$PGPORT" -U postgres -tAc "SELECT 1 FROM pg_roles WHERE rolname='portal'" | grep -q 1; then
    as_pg "$PGBIN/psql" -q -h "$RUN" -p "$PGPORT" -U postgres \
      -c "CREATE ROLE portal LOGIN PASSWORD '$PORTAL_DB_PASSWORD'" \
      -c "CREATE DATABASE portal OWNER portal"
  fi
}

redis_conf() {
  cat >"$STATE/redis.conf" <<CONF
bind 127.0.0.1
port $REDISPORT
requirepass $PORTAL_REDIS_PASSWORD
daemonize yes
pidfile $RUN/redis.pid
logfile $LOG/redis.log
dir $STATE
appendonly yes
appendfsync everysec
CONF
  chmod 600 "$STATE/redis.conf"
}

redis_cli() { REDISCLI_AUTH=$PORTAL_REDIS_PASSWORD redis-cli -h 127.0.0.1 -p "$REDISPORT" "$@"; }

redis_up() {
  redis_conf
  if ! redis_cli ping >/dev/null 2>&1; then
    redis-server "$STATE/redis.conf" >/dev/null
    for _ in $(seq 50); do redis_cli ping >/dev/null 2>&1 && return; sleep 0.1; done
    echo "deploy-local: redis did not start (see $LOG/redis.log)" >&2; exit 1
  fi
}

redis_down() {
  if redis_cli ping >/dev/null 2>&1; then redis_cli shutdown >/dev/null 2>&1 || true; fi
  for _ in $(seq 50); do alive "$RUN/redis.pid" || break; sleep 0.1; done
}

tls() {
  if [[ ! -f $STATE/tls/cert.pem ]]; then
    mkdir -p "$STATE/tls"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 365 \
      -subj "/CN=127.0.0.1" -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
      -keyout "$STATE/tls/key.pem" -out "$STATE/tls/cert.pem" 2>/dev/null
    chmod 600 "$STATE/tls/key.pem"
  fi
}

app_setup() {
  # migrations, the demo city (loaded with the development config into this database: production
  # refuses the demo city), the Web Push key pair
  "$VENV/flask" --app wsgi db upgrade >"$LOG/migrate.log" 2>&1 \
    || { echo "deploy-local: migrations failed (see $LOG/migrate.log)" >&2; exit 1; }
  PORTAL_CONFIG=development "$VENV/flask" --app wsgi demo load --households "$HOUSEHOLDS" >"$LOG/demo.log" 2>&1 \
    || { echo "deploy-local: demo load failed (see $LOG/demo.log)" >&2; exit 1; }
  [[ -f $STATE/vapid_private.pem ]] || "$VENV/flask" --app wsgi push keys >/dev/null 2>&1
}

gunicorn_up() {
  if ! alive "$RUN/gunicorn.pid"; then
    GUNICORN_DAEMON=1 "$VENV/gunicorn" -c deploy/gunicorn.conf.py wsgi:app
    for _ in $(seq 100); do [[ -S $RUN/gunicorn.sock ]] && alive "$RUN/gunicorn.pid" && break; sleep 0.1; done
  fi
}

spawn() {  # spawn NAME CMD...: restarted when it exits (as systemd's Restart=always); pid file, log
  local name=$1; shift
  alive "$RUN/$name.pid" && return
  setsid bash -c 'trap "exit 0" TERM; while :; do "$@" & wait $!; sleep 1; done' "$name" "$@" \
    >>"$LOG/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/$name.pid"
}

workers_up() {
  for i in $(seq 1 "$RQ_WORKERS"); do
    spawn "worker-$i" "$VENV/rq" worker --url "$REDIS_URL" --logging_level WARNING portal
  done
}

stop_pid() {  # stop_pid FILE [group]: TERM the process (or its whole process group), wait, then KILL
  local file=$1 target
  alive "$file" || { rm -f "$file"; return 0; }
  local pid; pid=$(cat "$file")
  target=$pid; [[ ${2:-} == group ]] && target=-$pid
  kill -TERM -- "$target" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 -- "$target" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "$target" 2>/dev/null || true
  rm -f "$file"
}

workers_down() { for f in "$RUN"/worker-*.pid; do [[ -e $f ]] && stop_pid "$f" group; done; return 0; }

nginx_conf() {
  mkdir -p "$STATE/nginx/tmp"
  sed -e "s|@SERVER_NAME@|127.0.0.1 localhost|" -e "s|@HTTPS_PORT@|$HTTPS_PORT|g" -e "s|@HTTP_PORT@|$HTTP_PORT|g" \
      -e "s|@TLS_CERT@|$STATE/tls/cert.pem|" -e "s|@TLS_KEY@|$STATE/tls/key.pem|" \
      -e "s|@STATIC_ROOT@|$ROOT/static|" -e "s|@UPSTREAM@|unix:$RUN/gunicorn.sock|" \
      -e "s|@ACCESS_LOG@|$LOG/nginx-access.log|" deploy/nginx/portal-site.conf.in >"$STATE/nginx/portal-site.conf"
  cat >"$STATE/nginx/nginx.conf" <<CONF
# deploy-local's nginx: its own pid, logs and temp folders; the site is deploy/nginx/portal-site.conf.in
$( [[ $(id -u) -eq 0 ]] && echo "user root;" )
worker_processes 2;
pid $RUN/nginx.pid;
error_log $LOG/nginx-error.log warn;
events { worker_connections 1024; }
http {
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    sendfile on;
    client_body_temp_path $STATE/nginx/tmp/body;
    proxy_temp_path $STATE/nginx/tmp/proxy;
    fastcgi_temp_path $STATE/nginx/tmp/fastcgi;
    uwsgi_temp_path $STATE/nginx/tmp/uwsgi;
    scgi_temp_path $STATE/nginx/tmp/scgi;
    include $STATE/nginx/portal-site.conf;
}
CONF
}

nginx_up() {
  nginx_conf
  nginx -t -q -c "$STATE/nginx/nginx.conf" -e "$LOG/nginx-error.log"
  if alive "$RUN/nginx.pid"; then
    nginx -s reload -c "$STATE/nginx/nginx.conf" -e "$LOG/nginx-error.log"
  else
    nginx -c "$STATE/nginx/nginx.conf" -e "$LOG/nginx-error.log"
  fi
}

wait_ready() {
  for _ in $(seq 150); do
    if curl -sfk -o /dev/null "https://127.0.0.1:$HTTPS_PORT/readyz"; then return 0; fi
    sleep 0.2
  done
  echo "deploy-local: https://127.0.0.1:$HTTPS_PORT/readyz is not ready:" >&2
  curl -sk "https://127.0.0.1:$HTTPS_PORT/readyz" >&2 || true
  exit 1
}

up() {
  secrets; load_env
  postgres_up; redis_up; tls
  app_setup
  gunicorn_up; workers_up
  spawn scheduler "$VENV/flask" --app wsgi ops scheduler
  nginx_up; wait_ready
  say "up: https://127.0.0.1:$HTTPS_PORT/ (state $STATE; stop with make deploy-local-stop)"
}

down() {
  [[ -f $ENVFILE ]] || return 0
  load_env
  alive "$RUN/nginx.pid" && nginx -s quit -c "$STATE/nginx/nginx.conf" -e "$LOG/nginx-error.log" 2>/dev/null || true
  for _ in $(seq 50); do alive "$RUN/nginx.pid" || break; sleep 0.1; done
  stop_pid "$RUN/scheduler.pid" group
  workers_down
  stop_pid "$RUN/gunicorn.pid"
  redis_down
  if as_pg "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
  fi
  say "stopped (state kept in $STATE; remove it to start afresh)"
}

status() {
  load_env
  for f in "$RUN"/*.pid; do
    [[ -e $f ]] || continue
    printf '%-12s %s\n' "$(basename "$f" .pid)" "$(alive "$f" && echo running || echo stopped)"
  done
  printf '%-12s %s\n' postgres "$(as_pg "$PGBIN/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1 && echo running || echo stopped)"
  curl -sk "https://127.0.0.1:$HTTPS_PORT/readyz" || true; echo
}

case ${1:-up} in
  up) up ;;
  down) down ;;
  status) status ;;
  env) secrets; cat "$ENVFILE" ;;
  db-restart) load_env; as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w restart \
      -o "-p $PGPORT -k $RUN -c listen_addresses=127.0.0.1 -c max_connections=200" >/dev/null ;;
  db-stop) load_env; as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null ;;
  db-start) load_env; postgres_up ;;
  redis-stop) load_env; redis_down ;;
  redis-start) load_env; redis_up ;;
  workers-stop) load_env; workers_down ;;
  workers-start) load_env; workers_up ;;
  reload) load_env; stop_pid "$RUN/gunicorn.pid"; gunicorn_up; wait_ready ;;
  *) echo "usage: $0 up|down|status|env|db-restart|db-stop|db-start|redis-stop|redis-start|workers-stop|workers-start|reload" >&2; exit 2 ;;
esac
