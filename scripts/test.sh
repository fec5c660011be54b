#!/usr/bin/env bash
# Runs every test: formatting, vet, unit tests, fuzz seeds, and the
# end-to-end suite against a PostgreSQL the tests start themselves, with
# real clients (pgx, lib/pq, psql, node-postgres, pgbench).
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

if command -v npm >/dev/null 2>&1; then
	echo "==> npm ci (node-postgres for the end-to-end tests)"
	npm ci --prefix test/node --no-audit --no-fund --loglevel=error
fi

echo "==> go test"
go test -race -timeout 20m -count=1 "$@" ./...
