# Shared by deploy/backup.sh and deploy/restore.sh (sourced, not run).
# Reads the app's settings the way the app names them and turns them into a libpq connection
# without putting the password on a command line (where `ps` would show it).

die() {
  echo "$(basename "$0"): $*" >&2
  exit 1
}

# --env-file: KEY=value lines (systemd EnvironmentFile syntax). The file is parsed, never run,
# and only the settings these scripts need are taken from it; they win over the environment.
read_env_file() {
  local file=$1 line key value
  [[ -r $file ]] || die "cannot read $file"
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line#"${line%%[![:space:]]*}"}
    [[ -z $line || $line == \#* || $line == \;* || $line != *=* ]] && continue
    key=${line%%=*}
    key=${key%"${key##*[![:space:]]}"}
    value=${line#*=}
    value=${value#"${value%%[![:space:]]*}"}
    value=${value%"${value##*[![:space:]]}"}
    case $key in
      DATABASE_URL | DB_HOST | DB_PORT | POSTGRES_DB | POSTGRES_USER | POSTGRES_PASSWORD | DATA_DIR | MEDIA_BACKEND) ;;
      *) continue ;;
    esac
    if [[ $value =~ ^\"(.*)\"$ || $value =~ ^\'(.*)\'$ ]]; then
      value=${BASH_REMATCH[1]}
    fi
    printf -v "$key" '%s' "$value"
    export "${key?}"
  done <"$file"
}

urldecode() {
  local text=${1//+/ }
  printf '%b' "${text//%/\\x}"
}

# Sets PG_URL (a postgresql:// URL without the password), PG_NAME (the database name) and
# PG_MAINTENANCE_URL (the same server's `postgres` database); exports PGPASSWORD if there is one.
# Source: DATABASE_URL (the app's spellings postgres://, postgresql://, postgresql+psycopg://),
# else DB_HOST with DB_PORT, POSTGRES_USER, POSTGRES_PASSWORD, POSTGRES_DB (like app/settings.py).
resolve_database() {
  local url=${DATABASE_URL:-} userinfo rest user password
  if [[ -n $url ]]; then
    url=${url/#postgresql+psycopg:\/\//postgresql://}
    url=${url/#postgres:\/\//postgresql://}
    [[ $url == postgresql://* ]] ||
      die "DATABASE_URL is not PostgreSQL; with the embedded SQLite, stop the app and copy DATA_DIR"
  elif [[ -n ${DB_HOST:-} ]]; then
    url="postgresql://${POSTGRES_USER:-postgres}@${DB_HOST}:${DB_PORT:-5432}/${POSTGRES_DB:-lomaya_baryery_db_local}"
    [[ -n ${POSTGRES_PASSWORD:-} ]] && export PGPASSWORD=$POSTGRES_PASSWORD
  else
    die "no PostgreSQL configured: set DATABASE_URL (or DB_HOST…), or pass --env-file /etc/lomaya/lomaya.env"
  fi
  rest=${url#postgresql://}
  if [[ $rest == *@* ]]; then
    userinfo=${rest%%@*}
    rest=${rest#*@}
    user=${userinfo%%:*}
    if [[ $userinfo == *:* ]]; then
      password=${userinfo#*:}
      export PGPASSWORD
      PGPASSWORD=$(urldecode "$password")
    fi
    rest="$user@$rest"
  fi
  [[ $rest =~ ^([^/?]*)/([^?]+)(\?.*)?$ ]] || die "DATABASE_URL names no database"
  PG_URL="postgresql://${BASH_REMATCH[1]}/${BASH_REMATCH[2]}${BASH_REMATCH[3]}"
  PG_NAME=$(urldecode "${BASH_REMATCH[2]}")
  PG_MAINTENANCE_URL="postgresql://${BASH_REMATCH[1]}/postgres${BASH_REMATCH[3]}"
}

# The media folder of MEDIA_BACKEND=local: DATA_DIR/media (a bucket is copied with its own tools).
resolve_media() {
  local backend=${MEDIA_BACKEND:-local}
  if [[ $backend != local ]]; then
    die "MEDIA_BACKEND=$backend: these scripts copy a local media folder only. Run with --db-only" \
      "and copy the bucket separately (aws s3 sync / rclone sync, see docs/deploy.md)"
  fi
  MEDIA_DIR="${DATA_DIR:-./var}/media"
}

# copy_tree SRC/ DEST/ [more rsync options]: files being written (*.tmp) and the health probe's
# files are left out.
copy_tree() {
  if command -v rsync >/dev/null 2>&1; then
    rsync -a --exclude '*.tmp' --exclude '.probe-*' "${@:3}" "$1" "$2"
  else
    mkdir -p "$2"
    cp -a "$1." "$2"
  fi
}
