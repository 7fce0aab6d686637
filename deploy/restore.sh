#!/usr/bin/env bash
# Restore a backup of Ломая барьеры made by deploy/backup.sh into a fresh database.
#
#   deploy/restore.sh [--env-file FILE] [--create] [--db-only] BACKUP_DIR
#
# The target is the database of DATABASE_URL (or DB_HOST/POSTGRES_*) and the media folder
# DATA_DIR/media, from the environment or from --env-file. The database must be empty (it is
# never overwritten); --create creates it first (the connecting role needs CREATEDB and becomes
# its owner). Objects are restored without their old owners and grants, owned by the connecting
# role. Photos are copied into DATA_DIR/media (files already there are kept).
#
# Stop the lomaya services that use the target first; afterwards run `lomaya migrate` if the
# code is newer than the backup, then start them (docs/deploy.md).
set -euo pipefail
umask 027

# shellcheck source=deploy/lib.sh
. "$(dirname "$0")/lib.sh"

usage() {
  sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

create=false
db_only=false
backup=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --env-file) read_env_file "${2:?--env-file needs a file}"; shift 2 ;;
    --env-file=*) read_env_file "${1#*=}"; shift ;;
    --create) create=true; shift ;;
    --db-only) db_only=true; shift ;;
    -h | --help) usage ;;
    -*) die "unknown option $1" ;;
    *) [[ -z $backup ]] || usage; backup=$1; shift ;;
  esac
done
[[ -n $backup ]] || usage
[[ -f $backup/database.dump ]] || die "$backup: no database.dump (is it a finished backup?)"
command -v pg_restore >/dev/null || die "pg_restore is missing (apt-get install postgresql-client)"

(cd "$backup" && sha256sum --check --quiet SHA256SUMS) || die "$backup: checksums do not match"
resolve_database
$db_only || resolve_media
if ! $db_only && [[ ! -d $backup/media ]]; then
  die "$backup has no media/ folder (made with --db-only?): restore with --db-only"
fi

if $create; then
  createdb --maintenance-db="$PG_MAINTENANCE_URL" -- "$PG_NAME"
  echo "created database $PG_NAME"
fi
tables=$(psql "$PG_URL" -X -Atq -c \
  "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")
[[ $tables == 0 ]] || die "database $PG_NAME is not empty ($tables tables): restore into a fresh one"

pg_restore --no-owner --no-acl --exit-on-error --single-transaction \
  --dbname="$PG_URL" "$backup/database.dump"
revision=$(psql "$PG_URL" -X -Atq -c 'SELECT version_num FROM alembic_version' 2>/dev/null || true)
echo "restored database $PG_NAME (schema revision ${revision:-unknown})"

if ! $db_only; then
  mkdir -p "$MEDIA_DIR"
  copy_tree "$backup/media/" "$MEDIA_DIR/"
  echo "restored $(find "$backup/media" -type f | wc -l) media files into $MEDIA_DIR"
fi
grep -E '^(created_at|schema_revision|media_files)=' "$backup/manifest.txt" | sed 's/^/backup: /'
