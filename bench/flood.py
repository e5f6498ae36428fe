"""Issue 13's flood against a real `buttress-bench stack`: admission and memory.

Starts `buttress-bench stack` behind a trusted proxy (127.0.0.1) with a global limit of
LIMIT and a memory store of MAX_KEYS keys, sends FLOOD requests whose X-Forwarded-For are
distinct IPv6 /64s from NETS /48s (2001:db8:a::/48, 2001:db8:b::/48, ...), then 10 requests
from a bystander on another network (198.51.100.23), and prints one Markdown table row:
flood admitted, bystander admitted, each flooding network refused for a fresh /64, and the
server's resident memory before and after the flood (VmRSS, and VmHWM, its peak).

    cargo build --release -p buttress-bench
    python3 bench/flood.py                              # the issue's figures: 3,000 requests, cap 1,000
    MAX_KEYS=100000 FLOOD=196608 python3 bench/flood.py # the default cap, 65,536 /64s from each /48

Environment: BIN (default /var/tmp/buttress-target/release/buttress-bench), LIMIT
("10 per minute"), MAX_KEYS (1000), FLOOD (3000), NETS (3). Uses only the standard library.
"""

import http.client
import os
import secrets
import subprocess
import sys
import time

BIN = os.environ.get("BIN", "/var/tmp/buttress-target/release/buttress-bench")
LIMIT = os.environ.get("LIMIT", "10 per minute")
MAX_KEYS = int(os.environ.get("MAX_KEYS", "1000"))
FLOOD = int(os.environ.get("FLOOD", "3000"))
NETS = int(os.environ.get("NETS", "3"))
BYSTANDER = "198.51.100.23"


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def flooder(i):
    """The i-th flooding address: its own /64 inside one of the NETS /48s."""
    net, n = i % NETS, i // NETS
    if n > 0xFFFF:
        sys.exit(f"FLOOD={FLOOD} needs more than 65,536 /64s per /48: raise NETS")
    return f"2001:db8:{0xa + net:x}:{n:x}::1"


def main():
    env = dict(os.environ)
    env.update(
        {
            "SECRET_KEY": secrets.token_hex(32),
            "BUTTRESS_BEHIND_PROXY": "true",
            "BUTTRESS_TRUSTED_PROXIES": "127.0.0.1",
            "BUTTRESS_RATELIMIT_DEFAULT": LIMIT,
            "BUTTRESS_RATELIMIT_MAX_KEYS": str(MAX_KEYS),
            "RUST_LOG": "warn",
        }
    )
    server = subprocess.Popen(
        [BIN, "stack", "--bind", "127.0.0.1:0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        url = server.stdout.readline().strip()
        host, port = url.removeprefix("http://").rstrip("/").rsplit(":", 1)
        conn = http.client.HTTPConnection(host, int(port), timeout=10)

        def get(xff):
            conn.request("GET", "/", headers={"X-Forwarded-For": xff})
            res = conn.getresponse()
            res.read()
            return res.status

        # One request from loopback itself so the process has served before the baseline.
        get("192.0.2.1")
        before = rss_kib(server.pid)
        started = time.monotonic()
        flood_ok = sum(get(flooder(i)) == 200 for i in range(FLOOD))
        elapsed = time.monotonic() - started
        after, peak = rss_kib(server.pid), rss_kib(server.pid, "VmHWM")
        bystander_ok = sum(get(BYSTANDER) == 200 for _ in range(10))
        fresh = [get(f"2001:db8:{0xa + n:x}:ffff:ffff::1") for n in range(NETS)]
        print(
            "| limit | cap (keys) | flood requests | flood admitted | bystander admitted "
            "| fresh /64 of each flooding /48 | RSS before | RSS after flood | peak RSS | flood rate |"
        )
        print("|---|---:|---:|---:|---:|---|---:|---:|---:|---:|")
        print(
            f"| {LIMIT} | {MAX_KEYS:,} | {FLOOD:,} from {NETS} /48s | {flood_ok:,} "
            f"| {bystander_ok} of 10 | {', '.join(map(str, fresh))} "
            f"| {before / 1024:.1f} MiB | {after / 1024:.1f} MiB | {peak / 1024:.1f} MiB "
            f"| {FLOOD / elapsed:,.0f} req/s |"
        )
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
