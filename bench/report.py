"""Helper of scripts/bench: parses wrk and criterion output and writes bench/RESULTS.md.

    report.py parse PAIR SIDE NAME ROUND [SERVER_CPU WRK_CPU] < wrk-output -> one TSV line
    report.py cpu PID                                      -> CPU seconds of PID and its descendants
    report.py run CPU_FILE CMD...                          -> runs CMD, writes its CPU seconds to CPU_FILE
    report.py criterion BENCH CRITERION_DIR MARKER < out   -> TSV lines (bench, id, median ns, ...)
    report.py render WORK_DIR OUT                          -> terminal table + OUT (Markdown)

Anything below the line ``<!-- notes -->`` in an existing OUT is kept: write observations there.
"""

import json
import os
import re
import statistics
import sys

NOTES_MARK = "<!-- notes -->"
UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0, "h": 3600000.0}


def ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    if not m:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(m.group(1)) * UNITS[m.group(2)]


def tree_cpu(pid):
    """User + system CPU seconds of process `pid` and its live descendants (gunicorn's workers
    are children of its master), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    stats = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # After the command name: state ppid ... utime (14th field overall) stime (15th).
        stats[int(entry)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    tree, total, grew = {int(pid)}, 0, True
    while grew:
        grew = False
        for p, (ppid, _) in stats.items():
            if ppid in tree and p not in tree:
                tree.add(p)
                grew = True
    for p in tree:
        total += stats.get(p, (0, 0))[1]
    print(f"{total / tick:.3f}")


def run_timed(cpu_file, cmd):
    """Runs `cmd` with this process's stdio and writes the CPU seconds it used (children's
    rusage, so `timeout wrk …` counts wrk) to `cpu_file`."""
    import resource
    import subprocess
    code = subprocess.run(cmd).returncode
    use = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(cpu_file, "w") as f:
        f.write(f"{use.ru_utime + use.ru_stime:.3f}\n")
    sys.exit(code)


def per_request_us(cpu, requests):
    try:
        return f"{float(cpu) * 1e6 / int(requests):.2f}"
    except (TypeError, ValueError, ZeroDivisionError):
        return ""


def parse_wrk(pair, side, name, rnd, server_cpu=None, wrk_cpu=None):
    text = sys.stdin.read()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    if not rps:
        sys.exit("wrk output without Requests/sec:\n" + text)
    lat = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)", text, re.M))
    requests = re.search(r"(\d+) requests in", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    sock_text = "0"
    if sock:
        c, r, w, t = sock.groups()
        sock_text = f"connect {c} read {r} write {w} timeout {t}"
    print("\t".join([
        pair, side, name, rnd,
        f"{float(rps.group(1)):.1f}",
        f"{ms(lat['50']):.3f}",
        f"{ms(lat['99']):.3f}",
        non2xx.group(1) if non2xx else "0",
        sock_text,
        requests.group(1) if requests else "?",
        per_request_us(server_cpu, requests.group(1) if requests else None),
        per_request_us(wrk_cpu, requests.group(1) if requests else None),
    ]))


def parse_criterion(bench, criterion_dir, marker):
    out = sys.stdin.read()
    since = os.path.getmtime(marker)
    printed = set()
    for line in out.splitlines():
        m = re.match(r"^(\S.*?)\s+time:\s+\[", line)
        if m:
            printed.add(m.group(1).strip())
        elif line.strip() and not line.startswith(" ") and "time:" not in line:
            printed.add(line.strip())
    rows = []
    for root, _dirs, files in os.walk(criterion_dir):
        if not root.endswith(os.sep + "new") or "benchmark.json" not in files:
            continue
        path = os.path.join(root, "benchmark.json")
        if os.path.getmtime(path) < since:
            continue
        with open(path) as f:
            full_id = json.load(f)["full_id"]
        if full_id not in printed:
            continue  # someone else's run in the shared target directory
        with open(os.path.join(root, "estimates.json")) as f:
            est = json.load(f)
        med = est["median"]
        rows.append((full_id, med["point_estimate"], med["confidence_interval"]["lower_bound"],
                     med["confidence_interval"]["upper_bound"], est["mean"]["point_estimate"]))
    for full_id, median, lo, hi, mean in sorted(rows):
        print(f"{bench}\t{full_id}\t{median:.3f}\t{lo:.3f}\t{hi:.3f}\t{mean:.3f}")


def fmt_ns(ns):
    if ns < 1000:
        return f"{ns:.1f} ns"
    if ns < 1e6:
        return f"{ns / 1000:.2f} µs"
    return f"{ns / 1e6:.2f} ms"


def read_tsv(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


PAIRS = {
    # id: (title, which side is ours, rps target as ours/theirs, p99 must be lower)
    "a": ("full stack vs bare axum, 1 KB page `/`", "B", 0.85, False),
    # No target: what the stack's response headers cost on their own (the same page on bare
    # axum with the stack's 11 headers as fixed values), so (a) can be read against its floor.
    "e": ("full stack vs bare axum sending the stack's headers as fixed values", "B", None, False),
    # The stack a Rust user would assemble from today's crates (`buttress-bench-peer peer`: axum +
    # tower-http + tower-sessions + tower_governor), on the same server as the stack.
    "f": ("full stack vs the peer stack (tower-http + tower-sessions + tower_governor)", "A", 1.3, False),
    "b": ("portal landing `/` vs Flask", "A", 30.0, True),
    "c": ("portal donor search (signed in) vs Flask", "A", 30.0, True),
}


def render(work, out):
    meta = {}
    for row in read_tsv(os.path.join(work, "meta.tsv")):
        meta[row[0]] = row[1] if len(row) > 1 else ""
    runs = read_tsv(os.path.join(work, "results.tsv"))
    crit = read_tsv(os.path.join(work, "criterion.tsv"))
    memory = read_tsv(os.path.join(work, "memory.tsv"))
    provisional = meta.get("portal_in_tree") != "yes"

    summary = []
    for pid, (title, ours, target, p99_lower) in PAIRS.items():
        rows = [r for r in runs if r[0] == pid]
        if not rows:
            continue
        side = {}
        for s in ("A", "B"):
            rs = [r for r in rows if r[1] == s]
            side[s] = {
                "name": rs[0][2],
                "rps": statistics.median(float(r[4]) for r in rs),
                "p50": statistics.median(float(r[5]) for r in rs),
                "p99": statistics.median(float(r[6]) for r in rs),
                "bad": sum(int(r[7]) for r in rs),
                "sock": [r[8] for r in rs if r[8] != "0"],
            }
        theirs = "A" if ours == "B" else "B"
        ratio = side[ours]["rps"] / side[theirs]["rps"]
        met = target is None or ratio >= target
        p99_ok = side[ours]["p99"] < side[theirs]["p99"]
        summary.append((pid, title, side, ours, theirs, ratio, target, met, p99_lower, p99_ok))

    # Terminal table.
    print()
    print(f"{'pair':<5}{'A':<16}{'req/s':>10}{'p99 ms':>9}  {'B':<16}{'req/s':>10}{'p99 ms':>9}  {'ratio':>8}  target")
    for pid, title, side, ours, theirs, ratio, target, met, p99_lower, p99_ok in summary:
        a, b = side["A"], side["B"]
        verdict = "met" if met else "MISSED"
        if target is None:
            verdict = "floor, no target"
        if p99_lower:
            verdict += ", p99 " + ("lower" if p99_ok else "NOT lower")
        print(f"({pid})  {a['name']:<16}{a['rps']:>10.0f}{a['p99']:>9.2f}  {b['name']:<16}{b['rps']:>10.0f}{b['p99']:>9.2f}"
              f"  {ratio:>7.2f}x  {'' if target is None else f'>= {target:g}x: '}{verdict}")
    for row in crit:
        print(f"(d)  {row[0]:<10} {row[1]:<40} median {fmt_ns(float(row[2]))}")

    notes = ""
    if os.path.exists(out):
        with open(out) as f:
            old = f.read()
        if NOTES_MARK in old:
            notes = old.split(NOTES_MARK, 1)[1].strip("\n")

    md = []
    w = md.append
    w("# Benchmarks: `scripts/bench`")
    w("")
    w(f"Generated by `scripts/bench` on {meta.get('date', '?')} from {meta.get('commit', '?')}. "
      "Servers loaded in turn with `wrk` on loopback, two at a time, alternated A, B, A, B, …; "
      "medians over the rounds. Re-run: `scripts/bench` (about 10 minutes; see the README).")
    w("")
    if provisional and any(s[0] in "bc" for s in summary):
        w("> **(b) and (c) are PROVISIONAL**: this tree's `buttress serve` does not have the portal's "
          "routes yet (no `--seed-demo`), so its `/` is the placeholder landing page and `/donors` is "
          "its 404 page. Re-run once the portal is merged.")
        w("")
    w("## Summary")
    w("")
    w("| pair | A | A req/s | A p99 | B | B req/s | B p99 | ratio (ours/theirs) | target | result |")
    w("|---|---|---:|---:|---|---:|---:|---:|---|---|")
    for pid, title, side, ours, theirs, ratio, target, met, p99_lower, p99_ok in summary:
        a, b = side["A"], side["B"]
        result = "met" if met else "**missed**"
        tgt = f"req/s ≥ {target:g}×" if target is not None else "none (the floor under (a))"
        if target is None:
            result = "—"
        if p99_lower:
            tgt += ", p99 lower"
            result += "; p99 " + ("lower" if p99_ok else "**not lower**")
        if pid in "bc" and provisional:
            result += " (provisional)"
        w(f"| ({pid}) {title} | {a['name']} | {a['rps']:,.0f} | {a['p99']:.2f} ms | {b['name']} | "
          f"{b['rps']:,.0f} | {b['p99']:.2f} ms | {ratio:.2f}× | {tgt} | {result} |")
    w("")
    problems = [(pid, s) for pid, _t, side, *_ in summary for s in side.values() if s["bad"] or s["sock"]]
    if problems:
        w("Responses that were not 2xx/3xx, or socket errors, during the measured rounds:")
        w("")
        for pid, s in problems:
            w(f"- ({pid}) {s['name']}: non-2xx/3xx {s['bad']}" + (f"; socket errors {', '.join(s['sock'])}" if s["sock"] else ""))
        w("")

    cpu_rows = []
    for pid, title, side, *_ in summary:
        for s in ("A", "B"):
            rs = [r for r in runs if r[0] == pid and r[1] == s and len(r) > 11 and r[10] and r[11]]
            if rs:
                server = statistics.median(float(r[10]) for r in rs)
                client = statistics.median(float(r[11]) for r in rs)
                cpu_rows.append((pid, side[s]["name"], server, client))
    if cpu_rows:
        cores = int(meta.get("nproc", "0") or 0)
        w("## CPU per request (medians)")
        w("")
        w("Server: user + system CPU of the server's processes during the round (from `/proc`); "
          "wrk: the CPU `wrk` itself used. Both share the machine's cores, so "
          f"{cores or 'N'} cores ÷ (server + wrk) is about the most requests per second the "
          "machine allows for that server with `wrk` on it.")
        w("")
        w("| pair | server | server µs/req | wrk µs/req | total µs/req | cores ÷ total |")
        w("|---|---|---:|---:|---:|---:|")
        for pid, name, server, client in cpu_rows:
            cap = f"{cores * 1e6 / (server + client):,.0f} req/s" if cores else "—"
            w(f"| ({pid}) | {name} | {server:.2f} | {client:.2f} | {server + client:.2f} | {cap} |")
        w("")

    if crit or memory:
        w("## (d) Figures from the other benchmarks (criterion medians)")
        w("")
        w("| bench | benchmark | median | 95% CI of the median | mean |")
        w("|---|---|---:|---|---:|")
        for bench, full_id, median, lo, hi, mean in crit:
            w(f"| `{bench}` | {full_id} | {fmt_ns(float(median))} | {fmt_ns(float(lo))} – {fmt_ns(float(hi))} | {fmt_ns(float(mean))} |")
        w("")
        w("Commands: " + ", ".join(f"`cargo bench -p buttress --bench {b} -- --warm-up-time 1 --measurement-time 3`"
                                   for b in dict.fromkeys(r[0] for r in crit)) + ".")
        w("")
        if memory:
            w("Memory per tracked key, as `--bench ratelimit` prints it (measured in child processes):")
            w("")
            for row in memory:
                w(f"- `{row[0]}`: {row[1]}")
            w("")

    w("## Machine")
    w("")
    for key, label in [("nproc", "cores (`nproc`)"), ("cpu", "CPU"), ("kernel", "kernel"), ("rustc", "rustc"),
                       ("wrk", "wrk"), ("python", "Python (venv)"), ("load", "load average at start"),
                       ("settings", "settings"), ("limits", "global rate limit on both sides"),
                       ("ratelimit_in_tree", "Buttress rate limiter in this tree"),
                       ("portal_in_tree", "portal routes in this tree")]:
        if key in meta:
            w(f"- {label}: {meta[key]}")
    w("")
    w("## Commands")
    w("")
    w("Servers (each on a free loopback port; `<64 hex>` is a fresh `secrets.token_hex(32)`):")
    w("")
    for pid in PAIRS:
        for s in "AB":
            if f"cmd:{pid}:{s}" in meta:
                w(f"- ({pid}) {s}: `{meta[f'cmd:{pid}:{s}']}`")
    w("")
    w("Load (after a warm-up run of each server that is not recorded):")
    w("")
    for pid in PAIRS:
        for s in "AB":
            if f"wrk:{pid}:{s}" in meta:
                w(f"- ({pid}) {s}: `{meta[f'wrk:{pid}:{s}']}`")
    w("")
    checks = [(k, v) for k, v in meta.items() if k.split(":")[0] in ("bytes", "headers", "status", "signed_in")]
    if checks:
        w("Responses checked before loading:")
        w("")
        for k, v in checks:
            kind, pid, s = k.split(":")
            w(f"- ({pid}) {s} {kind.replace('_', ' ')}: {v}")
        w("")
    w("## Every round")
    w("")
    w("| pair | round | server | req/s | p50 | p99 | requests | non-2xx/3xx | socket errors |")
    w("|---|---:|---|---:|---:|---:|---:|---:|---|")
    for r in runs:
        w(f"| ({r[0]}) | {r[3]} | {r[2]} | {float(r[4]):,.0f} | {float(r[5]):.2f} ms | {float(r[6]):.2f} ms | {r[9]} | {r[7]} | {r[8]} |")
    w("")
    w("## Caveats")
    w("")
    w(f"- {meta.get('nproc', '?')} cores, shared with `wrk` and with whatever else runs on the machine "
      "(the load average at the start is above): absolute numbers move from run to run; the alternation "
      "and the medians are there so that the ratios are fair, not so that the absolute figures are stable.")
    w("- `wrk` runs on the same machine and takes its share of the cores; against the Rust servers "
      "it is close to being the bottleneck, so ratios against bare axum understate small costs "
      "and ratios against Flask understate the gap.")
    w("- gunicorn's sync workers answer `Connection: close`: every Flask request opens a new TCP "
      "connection, as it would in production behind this configuration; the Rust servers keep "
      "connections alive. That is part of what is being compared (the article's deployment), not "
      "an artefact.")
    w("- Flask runs with `force_https=False` (the article has `True`) because everything is plain "
      "HTTP on loopback; Buttress runs in Development on loopback, where the HTTPS redirect is off "
      "too. HSTS is sent by neither over plain HTTP.")
    w("- Flask-Limiter keeps its counters per gunicorn worker (memory storage); both sides check the "
      "same two windows per request with limits far above the load.")
    if any(s[0] == "f" for s in summary):
        w("- (f): the peer (`buttress-bench-peer peer`, `crates/buttress-bench-peer/src/peer.rs`) is what its "
          "crates' READMEs assemble: one `ServiceBuilder` of tower-http's request id (UUID v4 from the "
          "OS, as `uuid` without `fast-rng` draws it), trace, security headers set with "
          "`SetResponseHeaderLayer::if_not_present` and a static CSP (no nonce: 98 bytes less of "
          "response head than the stack), catch-panic, body limit, tower_governor per peer IP with "
          "`use_headers()` (one quota, the hour window: it holds one per layer), timeout (408) and "
          "tower-sessions with a memory store. Both sides run on `buttress::server::Server`.")
    w("")
    w(NOTES_MARK)
    if notes:
        w("")
        w(notes)
    with open(out, "w") as f:
        f.write("\n".join(md) + "\n")


def main():
    cmd = sys.argv[1] if len(sys.argv) > 1 else ""
    if cmd == "parse" and len(sys.argv) in (6, 8):
        parse_wrk(*sys.argv[2:])
    elif cmd == "cpu" and len(sys.argv) == 3:
        tree_cpu(sys.argv[2])
    elif cmd == "run" and len(sys.argv) > 3:
        run_timed(sys.argv[2], sys.argv[3:])
    elif cmd == "criterion" and len(sys.argv) == 5:
        parse_criterion(*sys.argv[2:5])
    elif cmd == "render" and len(sys.argv) == 4:
        render(*sys.argv[2:4])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
