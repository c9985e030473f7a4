"""How fast `crm dev` is ready, and how fast it stops: median of a few fresh starts.

Ready means `.crm/local.json` is written (the banner is printed) and the API answers an
authenticated request. Each start uses a fresh state folder and free ports.

    python scripts/bench_local_cloud.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.conftest import CloudProcess  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    ready, first_request, stop = [], [], []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory() as state:
            cloud = CloudProcess(Path(state))
            started = time.monotonic()
            cloud.start()
            ready.append(time.monotonic() - started)
            token = cloud.token("demo", "viewer")
            status, _, _ = cloud.call("GET", "/contacts", token)
            assert status == 200, status
            first_request.append(time.monotonic() - started)
            stopping = time.monotonic()
            assert cloud.stop() == 0
            stop.append(time.monotonic() - stopping)
    print(f"crm dev, median of {args.runs} fresh starts (s)\n")
    print("| ready (banner) | first authenticated request | clean stop (SIGTERM) |")
    print("|---|---|---|")
    print(
        f"| {statistics.median(ready):.2f} | {statistics.median(first_request):.2f} "
        f"| {statistics.median(stop):.2f} |"
    )
    print("\ntarget: ready in under 15 s")


if __name__ == "__main__":
    main()
