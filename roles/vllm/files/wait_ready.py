#!/usr/bin/env python3
"""Wait until vLLM answers GET <url>/health with 200, with a deadline of its own.

A broken engine can stay "active (running)" without ever answering, so Restart= never fires;
and a crash-looping one ends "failed". Exit codes: 0 ready, 2 unit failed/inactive (stops at
once instead of waiting out the deadline), 3 deadline passed. Shipped by the vllm role and run
with ansible.builtin.script (stdlib only).

usage: wait_ready.py URL UNIT TIMEOUT_SECONDS
"""

import subprocess
import sys
import time
import urllib.error
import urllib.request


def unit_state(unit: str) -> str:
    out = subprocess.run(["systemctl", "show", "-p", "ActiveState", "--value", unit],
                         capture_output=True, text=True, check=False)
    return out.stdout.strip()


def main() -> int:
    url, unit, timeout = sys.argv[1], sys.argv[2], float(sys.argv[3])
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    last = "no answer"
    while time.monotonic() < deadline:
        state = unit_state(unit)
        if state in ("failed", "inactive"):
            print(f"{unit} is {state} after {time.monotonic() - started:.0f}s (last /health: {last})")
            return 2
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as resp:
                if resp.status == 200:
                    print(f"ready after {time.monotonic() - started:.0f}s")
                    return 0
                last = f"HTTP {resp.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except OSError as exc:
            last = str(getattr(exc, "reason", exc))
        time.sleep(2)
    print(f"not ready within {timeout:.0f}s (unit {unit_state(unit)}, last /health: {last})")
    return 3


if __name__ == "__main__":
    sys.exit(main())
