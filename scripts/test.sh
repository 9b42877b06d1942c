#!/usr/bin/env bash
# make test: vet, then every test package against real PostgreSQL, each on
# its own fresh database; the databases, the template and the test role are
# removed afterwards, and a private cluster started for the run is stopped.
set -euo pipefail
cd "$(dirname "$0")/.."

go vet ./...

admin=$(./scripts/pg-ensure.sh test)
# This run's name: its roles, template and databases start with
# hub_test_<run>_, and the clean-up drops only those, so two runs on one
# server leave each other alone.
HUB_TEST_RUN=r$(od -An -N5 -tx1 /dev/urandom | tr -d ' \n')
export HUB_TEST_RUN
cleanup() { ./scripts/pg-cleanup-test.sh "$admin" "$HUB_TEST_RUN" || true; }
trap cleanup EXIT
export HUB_TEST_DATABASE_URL="$admin"

# Each benchmark once, so a broken benchmark fails the build rather than
# the next person who measures.
if ! out=$(go test -run '^$' -bench . -benchtime 1x ./... 2>&1); then
  echo "$out"
  exit 1
fi

go test -race -count=1 ./...
