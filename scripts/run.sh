#!/usr/bin/env bash
# make run: find or start PostgreSQL, create the hub's role and database,
# then run `hubd demo` (migrate, seed a demo tenant and key, serve).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .data

# A secret kept across runs under .data, created on first use.
keep_secret() {
  local file=".data/$1"
  if [ ! -s "$file" ]; then
    (umask 077; head -c 32 /dev/urandom | base64 | tr -d '\n' > "$file")
  fi
  cat "$file"
}

if [ -z "${HUB_DATABASE_URL:-}" ]; then
  admin=$(./scripts/pg-ensure.sh run)
  psql=$(./scripts/pg-ensure.sh psql)
  # Two ordinary roles: hub_owner owns the schema and runs the migrations;
  # hub serves and owns nothing. Row-level security never binds a superuser
  # or a table's owner, so serving as either would switch tenant isolation
  # off (hubd refuses to).
  # Each checkout has a database of its own, named in .data/database: the
  # signing keys in it are sealed with this checkout's .data/secret-key, so
  # another checkout could not open them. A checkout that already had a
  # secret key before the name was kept used the database hub.
  if [ ! -s .data/database ]; then
    if [ -s .data/secret-key ]; then
      echo hub > .data/database
    else
      echo "hub_$(od -An -N4 -tx1 /dev/urandom | tr -d ' \n')" > .data/database
    fi
  fi
  db=$(cat .data/database)
  "$psql" "$admin" -qAt -v ON_ERROR_STOP=1 -v db="$db" <<'SQL' >/dev/null
SELECT 'CREATE ROLE hub_owner LOGIN PASSWORD ''hub_owner'' NOSUPERUSER NOBYPASSRLS'
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'hub_owner') \gexec
SELECT 'CREATE ROLE hub LOGIN PASSWORD ''hub'' NOSUPERUSER NOBYPASSRLS'
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'hub') \gexec
SELECT format('CREATE DATABASE %I OWNER hub_owner', :'db')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db') \gexec
SQL
  # A database made before the two roles existed belongs to hub: hand it,
  # and everything in it, to hub_owner.
  dburl=$(printf '%s' "$admin" | sed -E "s|^([a-z]+://[^/]+)/[^?]*|\1/$db|")
  "$psql" "$dburl" -qAt -v ON_ERROR_STOP=1 -v db="$db" <<'SQL' >/dev/null
SELECT format('ALTER DATABASE %I OWNER TO hub_owner', :'db')
WHERE (SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = :'db') <> 'hub_owner' \gexec
REASSIGN OWNED BY hub TO hub_owner;
SQL
  hostport=$(printf '%s' "$admin" | sed -E 's|^[a-z]+://([^@]*@)?([^/?]+).*|\2|')
  export HUB_DATABASE_URL="postgres://hub:hub@${hostport}/${db}?sslmode=disable"
  export HUB_MIGRATE_DATABASE_URL="postgres://hub_owner:hub_owner@${hostport}/${db}?sslmode=disable"
fi

# The file holds the token exactly as the hub takes it: copy it as it is.
if [ -z "${HUB_ADMIN_TOKEN:-}" ]; then
  HUB_ADMIN_TOKEN=$(./scripts/admin-token.sh .data/admin-token)
fi
export HUB_ADMIN_TOKEN
export HUB_SECRET_KEY="${HUB_SECRET_KEY:-$(keep_secret secret-key)}"
export HUB_ADDR="${HUB_ADDR:-:8080}"
export HUB_AUTO_MIGRATE="${HUB_AUTO_MIGRATE:-true}"
export HUB_OUTBOUND_ALLOW_PRIVATE="${HUB_OUTBOUND_ALLOW_PRIVATE:-true}"
export HUB_LOG_LEVEL="${HUB_LOG_LEVEL:-warn}"

# The same settings for hubd's other commands (hubd roster-sync, hubd
# migrate status): `set -a; . .data/env; set +a` in another shell.
(umask 077; env | grep '^HUB_' | sed -E "s/^([A-Z_]+)=(.*)$/\1='\2'/" > .data/env)

exec ./bin/hubd demo
