#!/usr/bin/env bash
# Both sides of the restart benchmark in one command: kill a child -> replacement running,
# one_for_one, short restart history and 50,000 restarts in the intensity window.
#   ours: cargo bench -p verisim-supervision --bench restart   (supervision/benches/restart.rs)
#   OTP:  supervision/bench/otp_restart.erl, only when `erl` and `erlc` are installed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
log="$(mktemp)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp" "$log"' EXIT

echo "== machine: $(nproc) cores, $(uname -sr)"
echo "== ours: ractor + verisim-supervision"
(cd "$root" && cargo bench -p verisim-supervision --bench restart) 2>&1 | tee -a "$log"

if command -v erl >/dev/null 2>&1 && command -v erlc >/dev/null 2>&1; then
    echo "== OTP: supervision/bench/otp_restart.erl"
    erlc -o "$tmp" "$here/otp_restart.erl"
    erl -noshell -pa "$tmp" -run otp_restart main -s init stop 2>&1 | tee -a "$log"
else
    echo >&2
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
    echo "!!! erl/erlc not found: the OTP side was NOT measured, there is nothing to compare." >&2
    echo "!!! Install Erlang (Debian/Ubuntu: apt-get install -y erlang-base) and run again." >&2
    echo "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!" >&2
fi

echo
echo "== summary (medians and p99 from raw samples; criterion's estimates are above)"
grep -E '^(ours|otp|--|Erlang)' "$log" || true
