#!/usr/bin/env bash
# pg-cleanup-test.sh ADMIN_URL — after `go test`: drop every hub_test_*
# database (templates included) and the hub_test_app role, and stop and
# remove a private cluster that pg-ensure.sh started for the tests.
# Problems are reported, never fatal: the test result is what counts.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
. ./scripts/pg-lib.sh

admin=${1:?usage: pg-cleanup-test.sh ADMIN_URL}
psql=$(pg_tool psql)

dbs=$("$psql" "$admin" -qAtc "SELECT datname FROM pg_database WHERE datname LIKE 'hub\_test\_%'") ||
  echo "warning: cannot list test databases" >&2
for db in $dbs; do
  "$psql" "$admin" -qAt -c "ALTER DATABASE \"$db\" IS_TEMPLATE false" \
    -c "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null ||
    echo "warning: could not drop database $db" >&2
done
"$psql" "$admin" -qAtc "DROP ROLE IF EXISTS hub_test_app" >/dev/null 2>&1 ||
  echo "warning: could not drop role hub_test_app" >&2

if [ -e .data/test-pg.started-by-test ]; then
  dir=$(cluster_dir test-pg)
  stop_private_cluster test-pg
  rm -rf "$dir" "$dir.log" .data/test-pg.path .data/test-pg.started-by-test
fi
exit 0
