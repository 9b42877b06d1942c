# shellcheck shell=bash
# Shell functions shared by the PostgreSQL scripts. Sourced, not run.

# pg_bindir prints the directory of the PostgreSQL server binaries,
# installing them from Debian packages as a last resort when run as root.
pg_bindir() {
  local dir
  if command -v pg_config >/dev/null 2>&1; then
    dir=$(pg_config --bindir)
    [ -x "$dir/initdb" ] && { echo "$dir"; return; }
  fi
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then
    echo "$dir"
    return
  fi
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "PostgreSQL is not installed: installing it with apt-get" >&2
    apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    pg_bindir
    return
  fi
  echo "PostgreSQL server binaries not found: install PostgreSQL 13 or newer" >&2
  return 1
}

# pg_tool prints the path of a PostgreSQL client program.
pg_tool() {
  if command -v "$1" >/dev/null 2>&1; then
    command -v "$1"
  else
    echo "$(pg_bindir)/$1"
  fi
}

# pg_answers URL succeeds when a query runs there.
pg_answers() {
  local psql
  psql=$(pg_tool psql 2>/dev/null) || return 1
  PGCONNECT_TIMEOUT=3 "$psql" "$1" -qAtc 'SELECT 1' >/dev/null 2>&1
}

# as_postgres runs a command as the postgres system user when we are root
# (initdb and the server refuse to run as root), else as ourselves.
as_postgres() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# cluster_dir NAME prints where the private cluster NAME lives: under
# ./.data, or in a temporary directory recorded in ./.data/NAME.path when
# the postgres user cannot reach the working tree.
cluster_dir() {
  if [ -s ".data/$1.path" ]; then
    cat ".data/$1.path"
  else
    echo "$PWD/.data/$1"
  fi
}

# start_private_cluster NAME PORT MODE initialises (once) and starts a
# cluster listening on 127.0.0.1:PORT only, with no Unix socket.
start_private_cluster() {
  local name=$1 port=$2 mode=$3 bin dir
  bin=$(pg_bindir)
  mkdir -p .data
  dir=$(cluster_dir "$name")
  if [ ! -s "$dir/PG_VERSION" ]; then
    dir=$(prepare_cluster_dir "$name")
    echo "initialising a private PostgreSQL cluster in $dir" >&2
    as_postgres "$bin/initdb" -D "$dir" -A trust -U postgres -E UTF8 --no-instructions >&2
  fi
  [ "$mode" = test ] && touch ".data/$name.started-by-test"
  if ! as_postgres "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
    local opts="-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=''"
    [ "$mode" = test ] && opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    echo "starting the private PostgreSQL cluster on 127.0.0.1:$port" >&2
    as_postgres "$bin/pg_ctl" -D "$dir" -l "$dir.log" -w -t 60 -o "$opts" start >&2
  fi
  local url="postgres://postgres@127.0.0.1:${port}/postgres?sslmode=disable"
  for _ in $(seq 1 60); do
    pg_answers "$url" && return 0
    sleep 0.5
  done
  echo "the private PostgreSQL cluster did not start; see $dir.log" >&2
  return 1
}

# prepare_cluster_dir NAME makes an empty directory the server user owns,
# falling back to a temporary one when it cannot reach ./.data.
prepare_cluster_dir() {
  local name=$1 dir="$PWD/.data/$1"
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$dir" "$PWD/.data"
    if ! runuser -u postgres -- test -w "$dir"; then
      rmdir "$dir"
      dir=$(mktemp -d)
      chown postgres: "$dir"
      echo "$dir" > ".data/$name.path"
    fi
  fi
  echo "$dir"
}

# stop_private_cluster NAME stops the private cluster NAME if it runs.
stop_private_cluster() {
  local dir
  dir=$(cluster_dir "$1")
  [ -s "$dir/PG_VERSION" ] || return 0
  as_postgres "$(pg_bindir)/pg_ctl" -D "$dir" -m fast -w stop >/dev/null 2>&1 || true
}
