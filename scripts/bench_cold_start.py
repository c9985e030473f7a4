"""Cold-start benchmark on the artifact that deploys: each function's init beside the floor.

It measures `sam build`'s output after `make build` finished it (infra/build/artifact.py), laid
out as Lambda lays it out (infra/build/cold_start.py). The layer's wheels are arm64; those with
compiled extensions are swapped for this machine's wheels of the same versions, which the
report names. Floor and function samples alternate so that machine noise hits both.

    python scripts/bench_cold_start.py [--runs N] [--build-dir DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from infra.build.artifact import BUILD_DIR, host_copy
from infra.build.cold_start import (
    FLOOR,
    FUNCTION,
    lambda_env,
    probe_code,
    sample,
    source_names,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--build-dir", type=Path, default=BUILD_DIR)
    args = parser.parse_args()
    names = source_names()
    with tempfile.TemporaryDirectory() as scratch:
        layout, swapped = host_copy(args.build_dir, Path(scratch) / "lambda")
        print(
            f"cold start on the artifact ({args.build_dir.name}), median of {args.runs} fresh "
            f"processes each (ms); arm64 wheels swapped for this machine's: "
            f"{', '.join(swapped) or 'none'}\n"
        )
        worst = measure(layout.functions, layout.layer, names, args.runs)
    print(f"\nworst cold-start ratio {worst:.2f} (target <= 1.30)")


def measure(functions: dict[str, Path], layer: Path, names: dict[str, str], runs: int) -> float:
    print(
        f"| {'function':<20} | {'cold start':>10} | {'floor':>7} | {'ratio':>5} "
        f"| {'+ 1st request':>13} | {'ratio':>5} |"
    )
    print(f"|{'-' * 22}|{'-' * 12}|{'-' * 9}|{'-' * 7}|{'-' * 15}|{'-' * 7}|")
    worst = 0.0
    for logical, task in sorted(functions.items(), key=lambda item: names[item[0]]):
        function = names[logical]
        env = lambda_env(function, task, layer)
        sample(FLOOR, env, task)  # the page cache warm, as for every later sample
        first_request = probe_code(function)
        floor, cold, first = [], [], []
        for _ in range(runs):
            floor.append(sample(FLOOR, env, task))
            cold.append(sample(FUNCTION, env, task))
            if first_request:
                first.append(sample(first_request, env, task))
        f_ms, c_ms = statistics.median(floor) * 1000, statistics.median(cold) * 1000
        worst = max(worst, c_ms / f_ms)
        r_ms = statistics.median(first) * 1000 if first else float("nan")
        print(
            f"| {function:<20} | {c_ms:>10.0f} | {f_ms:>7.0f} | {c_ms / f_ms:>5.2f} "
            f"| {r_ms:>13.0f} | {r_ms / f_ms:>5.2f} |"
        )
    return worst


if __name__ == "__main__":
    main()
