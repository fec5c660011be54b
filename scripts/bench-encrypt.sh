#!/usr/bin/env bash
# Encrypted workload benchmark (the seed's Client model): insert a client with
# a 1 KB medical history and read a random client back by id, 8 concurrent
# clients, direct to PostgreSQL without encryption and through the proxy with
# the seed policy, in one run; then 100-client reads (the seed's bulk
# decryption test). Prints each and the ratios.
#
#   ./scripts/bench-encrypt.sh            # 3 rounds of 5 s per target
#   ./scripts/bench-encrypt.sh 10s 5      # benchtime, rounds
set -euo pipefail
cd "$(dirname "$0")/.."
benchtime=${1:-5s} rounds=${2:-3}
out=$(go test -run '^$' -bench 'EncryptedWorkload|Select100Clients' -benchtime "$benchtime" -count "$rounds" ./test/e2e/)
echo "$out" | grep -E '^Benchmark'
echo "$out" | python3 -c '
import re, statistics, sys
res = {}
for line in sys.stdin:
    m = re.match(r"Benchmark(\w+)/(\w+)-\d+\s+\d+\s+([\d.]+) ns/op", line)
    if m:
        res.setdefault((m[1], m[2]), []).append(float(m[3]))
med = lambda k: statistics.median(res[k])
d, p = med(("EncryptedWorkload", "direct")), med(("EncryptedWorkload", "proxy"))
print(f"\nencrypted workload (insert + read by id): direct {1e9/d:,.0f} ops/s, proxy {1e9/p:,.0f} ops/s, proxy/direct = {d/p:.3f}")
d, p = med(("Select100Clients", "direct")), med(("Select100Clients", "proxy"))
print(f"100 clients read: direct {d/1e6:.3f} ms, proxy {p/1e6:.3f} ms, decryption adds {(p-d)/1e6:.3f} ms")
'
