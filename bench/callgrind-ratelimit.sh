#!/usr/bin/env bash
# Instructions per rate-limit check, counted by callgrind (a busy machine does not move them):
# the bench binary's RL_CALLS mode makes N checks of one kind in `run_checks`, and callgrind
# counts that function alone. Kinds: hot (one tracked key), new (a new key with room), flood
# (a new key while the store is full, without a network), flood_from (the same with the
# client's network, as the layers check; only in builds that have `check_from`). Time stands
# still in every kind (a manual clock), so the counts are the same on every run.
#
#   cargo bench -p buttress --bench ratelimit --no-run    # prints the bench binary's path
#   bench/callgrind-ratelimit.sh /var/tmp/buttress-target/release/deps/ratelimit-<hash> [more binaries]
#
# Prints one Markdown row per binary. N defaults to 100000 (N=... to change).
set -euo pipefail
N=${N:-100000}
kinds=(hot new flood flood_from)
printf '| binary |'; printf ' %s |' "${kinds[@]}"; printf '\n|---|'; printf -- '---:|%.0s' "${kinds[@]}"; printf '\n'
for bin in "$@"; do
  printf '| %s |' "$(basename "$bin")"
  for kind in "${kinds[@]}"; do
    out=$(RL_CALLS="$kind:$N" valgrind --tool=callgrind --callgrind-out-file=/dev/null \
      --toggle-collect='*run_checks*' "$bin" 2>&1)
    ir=$(sed -n 's/.*Collected : \([0-9]*\).*/\1/p' <<<"$out")
    if grep -q " $N checks" <<<"$out" && [ "${ir:-0}" -gt 0 ]; then
      printf ' %s |' "$(python3 -c "print(f'{$ir / $N:.0f}')")"
    else
      printf ' — |'
    fi
  done
  printf '\n'
done
