#!/usr/bin/env bash
# Back up the portal's PostgreSQL database: a custom-format dump (pg_dump -Fc: consistent snapshot,
# compressed, restorable table by table), its SHA-256, and the table fingerprints of the same
# snapshot to compare a restore against (flask ops backup). Dumps older than BACKUP_KEEP_DAYS (14)
# are removed.
#
#   DATABASE_URL=postgresql+psycopg://… scripts/backup.sh /var/backups/portal   # prints the dump's path
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:?usage: backup.sh DEST_DIR}
: "${DATABASE_URL:?DATABASE_URL is not set}"
out=$(.venv/bin/flask --app wsgi ops backup "$DEST")
find "$DEST" -name 'portal-*.dump*' -mtime +"${BACKUP_KEEP_DAYS:-14}" -delete
echo "$out"
