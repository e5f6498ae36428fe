#!/usr/bin/env bash
# bench/layers.sh: where the whole stack's time goes. Starts bare axum, the whole stack, and the
# stack rebuilt from its public layers with one layer (or group) left out, then loads each in
# turn with wrk, round-robin, ROUNDS times (default 2, DURATION 5s), and prints medians relative
# to bare axum. MODE=only instead measures bare axum plus one layer at a time. Run after `cargo build --release -p buttress-bench`. Loopback only; every server
# is stopped by PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-2}
DURATION=${DURATION:-5s}
BIN=${CARGO_TARGET_DIR:-/var/tmp/buttress-target}/release/buttress-bench
export SECRET_KEY=${SECRET_KEY:-$(python3 -c 'import secrets; print(secrets.token_hex(32))')}
WORK=$(mktemp -d /tmp/buttress-layers.XXXXXX)
pids=()
cleanup() {
  local pid
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

LAYERS=(csrf session body-limit timeout ratelimit panic proxy headers errors trace request-id)
variants=(
  "bare axum|bare --server axum"
  "bare on buttress Server|bare --server buttress"
  "stack (Buttress::apply)|stack"
  "stack on axum::serve|stack --server axum"
  "rebuilt, nothing left out|layers"
)
# MODE=skip (default): the stack without one layer; MODE=only: bare plus one layer.
case ${MODE:-skip} in
  skip)
    for l in "${LAYERS[@]}"; do variants+=("without $l|layers --skip $l"); done
    variants+=("without request ids|layers --skip request-id")
    variants+=("without session+csrf|layers --skip session,csrf")
    ;;
  only)
    all=$(IFS=,; echo "${LAYERS[*]}")
    variants+=("no layer at all|layers --skip $all")
    for l in "${LAYERS[@]}"; do
      rest=$(printf '%s\n' "${LAYERS[@]}" | grep -vx "$l" | paste -sd, -)
      variants+=("only $l|layers --skip $rest")
    done
    ;;
  *) echo "MODE is skip or only" >&2; exit 2 ;;
esac
urls=()
for i in "${!variants[@]}"; do
  read -r -a args <<<"${variants[$i]#*|}"
  "$BIN" "${args[@]}" > "$WORK/$i.addr" 2> "$WORK/$i.log" &
  pids+=("$!")
done
for i in "${!variants[@]}"; do
  for _ in $(seq 100); do [[ -s $WORK/$i.addr ]] && break; sleep 0.1; done
  urls[$i]=$(head -n 1 "$WORK/$i.addr")
  [[ -n ${urls[$i]} ]] || { echo "variant $i did not start: $(cat "$WORK/$i.log")" >&2; exit 1; }
  timeout 30 wrk -t2 -c64 -d1s "${urls[$i]}" > /dev/null
done
for r in $(seq "$ROUNDS"); do
  for i in "${!variants[@]}"; do
    rps=$(timeout 60 wrk -t2 -c64 -d"$DURATION" --latency "${urls[$i]}" | awk '/Requests\/sec/ {print $2}')
    printf '%s\t%s\t%s\n' "$i" "$r" "$rps" >> "$WORK/rps.tsv"
    printf '  round %s %-34s %10.0f req/s\n' "$r" "${variants[$i]%%|*}" "$rps" >&2
  done
done
python3 - "$WORK/rps.tsv" "${variants[@]}" <<'PY'
import statistics, sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().split("\n") if l]
names = [v.split("|")[0] for v in sys.argv[2:]]
cmds = [v.split("|")[1] for v in sys.argv[2:]]
med = {i: statistics.median(float(r[2]) for r in rows if int(r[0]) == i) for i in range(len(names))}
print(f"| variant | command | median req/s | vs bare axum |")
print(f"|---|---|---:|---:|")
for i, n in enumerate(names):
    cmd = cmds[i] if len(cmds[i]) < 60 else cmds[i].split(" --skip")[0] + " --skip <all others>"
    print(f"| {n} | `buttress-bench {cmd}` | {med[i]:,.0f} | {med[i] / med[0]:.2f} |")
PY
