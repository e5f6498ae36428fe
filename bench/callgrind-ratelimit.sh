#!/usr/bin/env bash
# Instructions per rate-limit check, counted by callgrind (a busy machine does not move them):
# each kind of check is run with N and 2N calls after the same setup, and the difference of the
# totals over N is the cost of one check. Kinds: hot (one tracked key), new (a new key with
# room), flood (a new key while the store is full, without a network), flood_from (the same
# with the client's network, as the layers check; only in builds that have `check_from`).
#
#   cargo bench -p buttress --bench ratelimit --no-run    # prints the bench binary's path
#   bench/callgrind-ratelimit.sh /var/tmp/buttress-target/release/deps/ratelimit-<hash> [more binaries]
#
# Prints one Markdown row per binary. N defaults to 50000 (N=... to change).
set -euo pipefail
N=${N:-50000}
kinds=(hot new flood flood_from)
printf '| binary |'; printf ' %s |' "${kinds[@]}"; printf '\n|---|'; printf -- '---:|%.0s' "${kinds[@]}"; printf '\n'
total() { # total instructions of `$1` running RL_CALLS=$2
  RL_CALLS=$2 valgrind --tool=callgrind --callgrind-out-file=/dev/null "$1" 2>&1 \
    | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
for bin in "$@"; do
  printf '| %s |' "$(basename "$bin")"
  for kind in "${kinds[@]}"; do
    one=$(total "$bin" "$kind:$N")
    two=$(total "$bin" "$kind:$((2 * N))")
    if [ "$one" = "$two" ]; then printf ' — |'; else printf ' %s |' "$(( (two - one) / N ))"; fi
  done
  printf '\n'
done
