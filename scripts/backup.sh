#!/usr/bin/env bash
# Back up the portal's PostgreSQL database: a custom-format dump (pg_dump -Fc: consistent snapshot,
# compressed, restorable table by table), its SHA-256, and the table fingerprints to compare a
# restore against. Old dumps beyond BACKUP_KEEP_DAYS (14) are removed.
#
#   DATABASE_URL=postgresql://… scripts/backup.sh /var/backups/portal     # prints the dump's path
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:?usage: backup.sh DEST_DIR}
URL=${DATABASE_URL:?DATABASE_URL is not set}
URL=${URL/postgresql+psycopg:/postgresql:}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
PG_DUMP=${PG_DUMP:-${PGBIN:+$PGBIN/}pg_dump}

mkdir -p "$DEST"
umask 077
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=$DEST/portal-$stamp.dump
"$PG_DUMP" --format=custom --compress=6 --no-password --file="$out.partial" "$URL"
mv "$out.partial" "$out"
(cd "$DEST" && sha256sum "$(basename "$out")" >"$(basename "$out").sha256")
DATABASE_URL=$URL .venv/bin/flask --app wsgi ops fingerprint >"$out.tables"
find "$DEST" -name 'portal-*.dump*' -mtime +"${BACKUP_KEEP_DAYS:-14}" -delete
echo "$out"
