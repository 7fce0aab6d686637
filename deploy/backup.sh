#!/usr/bin/env bash
# Back up Ломая барьеры: the PostgreSQL database and the photos.
#
#   deploy/backup.sh [--env-file /etc/lomaya/lomaya.env] [--db-only] DEST_DIR
#
# Writes DEST_DIR/lomaya-<UTC time>/ and prints its path:
#   database.dump   pg_dump in custom format (restore with deploy/restore.sh)
#   media/          a copy of DATA_DIR/media; files unchanged since the previous backup in
#                   DEST_DIR are hard links to it, so a daily backup costs only the new photos
#   manifest.txt    when, from which database and schema revision, how many media files
#   SHA256SUMS      checksums of database.dump and manifest.txt
# The folder is written as .partial-… and renamed when complete: a backup without the
# `lomaya-` name is unfinished. Settings come from the environment (DATABASE_URL or
# DB_HOST/POSTGRES_*, DATA_DIR, MEDIA_BACKEND) or from --env-file.
#
# The database is dumped first, the photos copied after: every photo the dump refers to is in the
# copy, unless it was deleted (retention, a family's request) during the backup.
# Photos in S3 (MEDIA_BACKEND other than local): use --db-only and copy the bucket with
# `aws s3 sync` or `rclone sync` (docs/deploy.md).
set -euo pipefail
umask 077 # children's photos and personal data: readable by the backup's owner only

# shellcheck source=deploy/lib.sh
. "$(dirname "$0")/lib.sh"

usage() {
  sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

db_only=false
dest=""
while [[ $# -gt 0 ]]; do
  case $1 in
    --env-file) read_env_file "${2:?--env-file needs a file}"; shift 2 ;;
    --env-file=*) read_env_file "${1#*=}"; shift ;;
    --db-only) db_only=true; shift ;;
    -h | --help) usage ;;
    -*) die "unknown option $1" ;;
    *) [[ -z $dest ]] || usage; dest=$1; shift ;;
  esac
done
[[ -n $dest ]] || usage

resolve_database
$db_only || resolve_media
command -v pg_dump >/dev/null || die "pg_dump is missing (apt-get install postgresql-client)"

mkdir -p "$dest"
stamp=$(date -u +%Y%m%dT%H%M%SZ)
final="$dest/lomaya-$stamp"
partial="$dest/.partial-lomaya-$stamp"
[[ ! -e $final ]] || die "$final already exists"
previous=$(find "$dest" -mindepth 1 -maxdepth 1 -type d -name 'lomaya-*' | sort | tail -n 1)
rm -rf "$partial"
mkdir "$partial"
trap 'rm -rf "$partial"' EXIT

pg_dump --format=custom --compress=6 --file="$partial/database.dump" --dbname="$PG_URL"
revision=$(psql "$PG_URL" -X -Atq -c 'SELECT version_num FROM alembic_version' 2>/dev/null || true)

media_files=0
if ! $db_only; then
  if [[ -d $MEDIA_DIR ]]; then
    link=()
    if [[ -n $previous && -d $previous/media ]]; then
      link=("--link-dest=$(cd "$previous/media" && pwd)")
    fi
    copy_tree "$MEDIA_DIR/" "$partial/media/" "${link[@]}"
  else
    mkdir "$partial/media"
  fi
  media_files=$(find "$partial/media" -type f | wc -l)
fi

cat >"$partial/manifest.txt" <<EOF
created_at=$(date -u +%Y-%m-%dT%H:%M:%SZ)
host=$(hostname)
database=$PG_NAME
schema_revision=${revision:-unknown}
pg_dump=$(pg_dump --version)
media=$($db_only && echo "not included (--db-only)" || echo "$MEDIA_DIR")
media_files=$media_files
EOF
(cd "$partial" && sha256sum database.dump manifest.txt >SHA256SUMS)

mv "$partial" "$final"
trap - EXIT
echo "$final"
