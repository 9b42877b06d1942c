#!/usr/bin/env bash
# pg-cleanup-test.sh ADMIN_URL RUN — after `go test`: drop this run's
# databases (hub_test_RUN_*, templates included) and its two roles, and stop
# and remove a private cluster that pg-ensure.sh started for the tests.
# Other runs' databases and roles on the same server are left alone.
# Problems are reported, never fatal: the test result is what counts.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
. ./scripts/pg-lib.sh

admin=${1:?usage: pg-cleanup-test.sh ADMIN_URL RUN}
run=${2:?usage: pg-cleanup-test.sh ADMIN_URL RUN}
case "$run" in *[!a-z0-9]*) echo "pg-cleanup-test.sh: bad run name $run" >&2; exit 2 ;; esac
prefix="hub_test_${run}_"
psql=$(pg_tool psql)

dbs=$("$psql" "$admin" -qAtc "SELECT datname FROM pg_database WHERE starts_with(datname, '$prefix')") ||
  echo "warning: cannot list test databases" >&2
for db in $dbs; do
  "$psql" "$admin" -qAt -c "ALTER DATABASE \"$db\" IS_TEMPLATE false" \
    -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null ||
    echo "warning: could not drop database $db" >&2
done
for role in "${prefix}app" "${prefix}owner"; do
  "$psql" "$admin" -qAtc "DROP ROLE IF EXISTS $role" >/dev/null 2>&1 ||
    echo "warning: could not drop role $role" >&2
done

if [ -e .data/test-pg.started-by-test ]; then
  dir=$(cluster_dir test-pg)
  stop_private_cluster test-pg
  rm -rf "$dir" "$dir.log" .data/test-pg.path .data/test-pg.started-by-test
fi
exit 0
