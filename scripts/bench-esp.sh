#!/usr/bin/env bash
# ESP throughput, petrel against strongSwan, on the same veth pair in one run:
# iperf3 through petrel <-> petrel (userspace ESP on TUN, ESP in UDP) and
# through strongSwan <-> strongSwan (kernel-libipsec), then the ratio.
# Needs root (network namespaces, TUN) and the test dependencies
# (scripts/install-test-deps.sh). Prints the figures; asserts no timing.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench-esp: needs root (network namespaces and TUN)" >&2; exit 1; }
./scripts/install-test-deps.sh >/dev/null
PETREL_BENCH=1 go test -count=1 -p 1 -run '^TestCompareStrongSwan$' -v ./dataplane/ 2>&1 |
	grep -E 'Mbit/s|ratio|petrel|strongSwan|^(ok|FAIL|---)' 
