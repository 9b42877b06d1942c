#!/usr/bin/env bash
# pg-ensure.sh MODE — make sure a PostgreSQL server answers and print a
# superuser URL for it on stdout (everything else goes to stderr).
#
#   run   use HUB_PG_ADMIN_URL, else 127.0.0.1:5432, else a private cluster
#         kept under ./.data/pg (port 54329)
#   test  the same, but the private cluster lives under ./.data/test-pg
#         (port 54328) and is removed by pg-cleanup-test.sh
#   psql  print the path of a psql client
#   stop  stop the private cluster of `run`, if it is running
#
# HUB_PG_FORCE_PRIVATE=1 skips the server on 5432 (to exercise the private
# path on a machine that has one).
set -euo pipefail
cd "$(dirname "$0")/.."
. ./scripts/pg-lib.sh

mode=${1:?usage: pg-ensure.sh run|test|psql}

case "$mode" in
  psql) pg_tool psql; exit 0 ;;
  stop) stop_private_cluster pg; exit 0 ;;
  run) name=pg; port=54329 ;;
  test) name=test-pg; port=54328 ;;
  *) echo "pg-ensure.sh: unknown mode $mode" >&2; exit 2 ;;
esac

if [ -n "${HUB_PG_ADMIN_URL:-}" ]; then
  pg_answers "$HUB_PG_ADMIN_URL" || { echo "HUB_PG_ADMIN_URL does not answer" >&2; exit 1; }
  echo "$HUB_PG_ADMIN_URL"
  exit 0
fi

system_url="postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
if [ "${HUB_PG_FORCE_PRIVATE:-}" != 1 ] && pg_answers "$system_url"; then
  echo "$system_url"
  exit 0
fi

start_private_cluster "$name" "$port" "$mode"
echo "postgres://postgres@127.0.0.1:${port}/postgres?sslmode=disable"
