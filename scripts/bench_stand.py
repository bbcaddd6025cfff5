#!/usr/bin/env python3
"""Benchmark `stand up local`: cold (no stand), warm (re-apply with nothing to change), per phase.

Usage: .venv/bin/python scripts/bench_stand.py [--stack local] [--cold-cache] [--keep] [--plot FILE]

  cold   `stand down` first, so hosts, artifact store, mirror and engine are all created anew
         (with --cold-cache also the rootfs, wheelhouse and converted model, in a fresh cache dir);
  warm   `stand up` again right after: every phase converges, nothing changes.
Prints one table of seconds per phase, side by side, and the warm/cold ratio. Timings are
printed, never asserted: they depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infra.config import load_stand  # noqa: E402
from infra.driver.progress import Phases  # noqa: E402
from infra.local import stand as local  # noqa: E402


def timed_up(stand) -> tuple[dict[str, float], float]:
    phases = Phases()
    start = time.monotonic()
    local.up(stand, phases)
    return phases.timings, round(time.monotonic() - start, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="local")
    parser.add_argument("--cold-cache", action="store_true", help="also rebuild rootfs, wheelhouse and model")
    parser.add_argument("--keep", action="store_true", help="leave the stand up afterwards")
    parser.add_argument("--plot", type=Path, help="write a bar chart of the phases (PNG)")
    args = parser.parse_args()
    if args.cold_cache:
        os.environ["STAND_CACHE_DIR"] = tempfile.mkdtemp(prefix="llm-stands-bench-cache-")
    stand = load_stand(args.stack)
    local.down(stand, Phases(quiet=True))
    try:
        cold, cold_total = timed_up(stand)
        warm, warm_total = timed_up(stand)
    finally:
        if not args.keep:
            local.down(stand, Phases(quiet=True))
    print(f"\n{'phase':<80} {'cold s':>8} {'warm s':>8} {'warm/cold':>9}")
    for name in cold:
        ratio = warm.get(name, 0) / cold[name] if cold[name] else 0
        print(f"{name[:80]:<80} {cold[name]:>8.1f} {warm.get(name, 0):>8.1f} {ratio:>9.2f}")
    print(f"{'total':<80} {cold_total:>8.1f} {warm_total:>8.1f} {warm_total / cold_total:>9.2f}")
    print(json.dumps({"cold": cold, "warm": warm, "cold_total_s": cold_total, "warm_total_s": warm_total}))
    if args.plot:
        plot(cold, warm, args.plot)
    return 0


def plot(cold: dict[str, float], warm: dict[str, float], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("no plot: matplotlib is not installed (pip install -e .[bench])", file=sys.stderr)
        return
    names = [n.split(":")[0] for n in cold]
    xs = range(len(names))
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.bar([x - 0.2 for x in xs], list(cold.values()), width=0.4, label="cold")
    ax.bar([x + 0.2 for x in xs], [warm.get(n, 0) for n in cold], width=0.4, label="warm (nothing to change)")
    ax.set_xticks(list(xs), names, rotation=15)
    ax.set_ylabel("seconds")
    ax.set_title("stand up local, per phase")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    print(f"plot: {path}")


if __name__ == "__main__":
    raise SystemExit(main())
