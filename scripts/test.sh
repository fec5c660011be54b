#!/usr/bin/env bash
# Runs every test: formatting, vet, staticcheck, unit tests, fuzz seeds, and the
# end-to-end suite against a PostgreSQL the tests start themselves, with
# real clients (pgx, lib/pq, psql, node-postgres, pgbench), once on the
# event-loop relay and once on the goroutine relay.
#
#   ./scripts/test.sh                 # everything
#   ./scripts/test.sh -run TestCopy   # extra flags go to `go test`
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './test/node/*'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
echo "==> go vet"
go vet ./...
echo "==> staticcheck (pinned in go.mod)"
go tool staticcheck ./...

if command -v npm >/dev/null 2>&1; then
	echo "==> npm ci (node-postgres for the end-to-end tests)"
	npm ci --prefix test/node --no-audit --no-fund --loglevel=error
fi

echo "==> go test"
# Idle event-loop directions are retired after 10 ms instead of 1 s, so
# that the end-to-end suite also runs their restarts, at most waits.
PGCRYPT_TEST_IDLE_RETIRE=${PGCRYPT_TEST_IDLE_RETIRE:-10ms} go test -race -timeout 20m -count=1 "$@" ./...

# Plain-TCP sessions run on the event loops above; TLS sessions, and every
# session on other systems, on two goroutines each. Run the end-to-end suite
# on the goroutine relay too.
# The attacker's suites, the migration commands and the differential fuzz
# seeds exercise analysis and the database, not the relay: once is enough.
echo "==> go test ./test/e2e (goroutine relay)"
PGCRYPT_TEST_EVENT_LOOPS=-1 go test -race -timeout 20m -count=1 \
	-skip 'TestAttackSuite|TestBackfill|TestGuard|TestCheck|TestCLIReload|TestDeployManifests|FuzzArrayDifferential|TestSchemaHazards' \
	"$@" ./test/e2e/
