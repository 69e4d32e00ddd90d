#!/usr/bin/env bash
# Restore a dump made by scripts/backup.sh into an EMPTY database, then check it: the checksum of
# the file, every table's row count and content hash against the fingerprints taken at backup
# time, and the access-record hash chain (flask audit verify). Exit 1 on any difference.
#
#   scripts/restore.sh /var/backups/portal/portal-20261127T013000Z.dump postgresql://portal@new-db/portal
set -euo pipefail
cd "$(dirname "$0")/.."
DUMP=${1:?usage: restore.sh DUMP TARGET_URL}
TARGET=${2:?usage: restore.sh DUMP TARGET_URL}
TARGET=${TARGET/postgresql+psycopg:/postgresql:}
PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
PG_RESTORE=${PG_RESTORE:-${PGBIN:+$PGBIN/}pg_restore}

(cd "$(dirname "$DUMP")" && sha256sum --quiet -c "$(basename "$DUMP").sha256")
"$PG_RESTORE" --exit-on-error --single-transaction --no-owner --no-privileges --dbname="$TARGET" "$DUMP"
export DATABASE_URL=${TARGET/postgresql:/postgresql+psycopg:}
.venv/bin/flask --app wsgi ops fingerprint >"$DUMP.restored-tables"
if ! diff -u "$DUMP.tables" "$DUMP.restored-tables"; then
  echo "restore.sh: the restored tables differ from the backup's fingerprints" >&2
  exit 1
fi
.venv/bin/flask --app wsgi audit verify
echo "restore.sh: $(wc -l <"$DUMP.tables") tables restored and identical"
