#!/usr/bin/env bash
# Both sides of the supervision benchmarks in one command:
#   restart: kill a child -> replacement running, one_for_one, short restart history and 50,000
#            restarts in the intensity window;
#   scale:   a restart storm (kill all N children at once -> all N replacements running) and a
#            10,000-child dynamic supervisor (start all one by one, which/count_children, stop all).
#   ours: cargo bench -p verisim-supervision --bench restart --bench scale
#         (supervision/benches/restart.rs, supervision/benches/scale.rs)
#   OTP:  supervision/bench/otp_restart.erl and otp_scale.erl, only when `erl` and `erlc` are
#         installed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
log="$(mktemp)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp" "$log"' EXIT

echo "== machine: $(nproc) cores, $(uname -sr), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== ours: ractor + verisim-supervision"
(cd "$root" && cargo bench -p verisim-supervision --bench restart --bench scale) 2>&1 | tee -a "$log"

if command -v erl >/dev/null 2>&1 && command -v erlc >/dev/null 2>&1; then
    echo "== OTP: supervision/bench/otp_restart.erl, supervision/bench/otp_scale.erl"
    erlc -o "$tmp" "$here/otp_restart.erl" "$here/otp_scale.erl"
    erl -noshell -pa "$tmp" -run otp_restart main -s init stop 2>&1 | tee -a "$log"
    erl -noshell -pa "$tmp" -run otp_scale main -s init stop 2>&1 | tee -a "$log"
else
    echo >&2
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
    echo "!!! erl/erlc not found: the OTP side was NOT measured, there is nothing to compare." >&2
    echo "!!! Install Erlang (Debian/Ubuntu: apt-get install -y erlang-base) and run again." >&2
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
fi

echo
echo "== load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== summary (medians and p99 from raw samples; criterion's estimates are above)"
grep -E '^(ours|otp|--|Erlang)' "$log" || true
