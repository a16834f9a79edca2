#!/usr/bin/env bash
# petrel's whole test suite: what `make test` and .ci/run run.
#   - as root: installs the system packages the network tests need
#     (scripts/install-test-deps.sh), then runs them too;
#   - always: gofmt and go vet checks, go test -race ./...
# Set PETREL_SKIP_INTEROP=1 to leave out the strongSwan interop harness.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

if [ "$(id -u)" = 0 ]; then
	step "installing test dependencies (root)"
	./scripts/install-test-deps.sh
fi

step "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

step "go vet"
go vet ./...

step "go test -race ./..."
go test -race -count=1 -timeout 30m ./...

if [ "$(id -u)" = 0 ] && [ "${PETREL_SKIP_INTEROP:-}" != 1 ]; then
	step "interop harness against strongSwan (root)"
	PETREL_INTEROP=1 PETREL_INTEROP_RESULTS=/tmp/petrel-interop go test -count=1 -p 1 -timeout 15m -v ./test/interop/ 2>&1 | tee /tmp/petrel-interop.log | grep -E '^(=== RUN|--- |PASS|FAIL|ok|SUMMARY|\|)|summary' || true
	# The pipe above filters the noise; the status comes from the log.
	if grep -qE '^(FAIL|--- FAIL)' /tmp/petrel-interop.log; then
		echo "interop harness failed; full log (results in /tmp/petrel-interop):"; cat /tmp/petrel-interop.log; exit 1
	fi
	grep -qE '^ok ' /tmp/petrel-interop.log || { echo "interop harness did not finish:"; tail -50 /tmp/petrel-interop.log; exit 1; }
fi
step "all tests passed"
