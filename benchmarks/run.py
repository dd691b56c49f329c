"""Runs the benchmarks: senryu vs dm-haiku (and hand-written JAX), alternating, fresh processes.

    python benchmarks/run.py [--rounds 3] [--groups mlp,eager,...] [--json out.json]

Each (group, library) measurement runs in a new Python process; libraries alternate A B, B A, ...
over rounds, so drifting machine load hits both. Prints a Markdown table of medians, spreads
(min-max over rounds) and ratios senryu / dm-haiku and senryu / plain JAX.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

LIBS = {
    "mlp": ["senryu", "haiku", "jax"],
    "transformer": ["senryu", "haiku", "jax"],
    "resnet50": ["senryu", "haiku"],
    "eager": ["senryu", "haiku"],
    "layer_stack": ["senryu", "haiku"],
    "wrappers": ["senryu", "haiku", "jax"],
    "override": ["senryu", "jax"],
}
LABELS = {("override", "senryu"): "override on", ("override", "jax"): "override off"}


def measure(lib: str, group: str, compile_figures: bool = True) -> dict:
    env = {**os.environ, "BENCH_COMPILE": "1" if compile_figures else "0"}
    result = subprocess.run([sys.executable, os.path.join(HERE, "measure.py"), lib, group],
                            capture_output=True, text=True, check=False, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"{group}/{lib} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])["values"]


def versions() -> str:
    import importlib.metadata as md
    parts = []
    for package in ("senryu", "dm-haiku", "jax", "jaxlib"):
        try:
            parts.append(f"{package} {md.version(package)}")
        except md.PackageNotFoundError:
            parts.append(f"{package} (not installed)")
    return ", ".join(parts) + f", Python {platform.python_version()}, {os.cpu_count()} CPUs"


def table(results: dict) -> str:
    lines = ["| group | figure | senryu | dm-haiku | plain JAX | senryu / haiku | senryu / JAX "
             "| senryu / haiku, best rounds |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for group, by_lib in results.items():
        figures = sorted({f for runs in by_lib.values() for run in runs for f in run})
        for figure in figures:
            stats = {}
            for lib, runs in by_lib.items():
                values = [run[figure] for run in runs if figure in run]
                if values:
                    stats[lib] = (statistics.median(values), min(values), max(values))

            def cell(lib):
                if lib not in stats:
                    return ""
                median, low, high = stats[lib]
                return f"{median:.3g} ({low:.3g}–{high:.3g})"

            def ratio(a, b):
                if a in stats and b in stats and stats[b][0] > 0:
                    return f"{stats[a][0] / stats[b][0]:.2f}"
                return ""

            def best_ratio(a, b):
                if a in stats and b in stats and stats[b][1] > 0:
                    return f"{stats[a][1] / stats[b][1]:.2f}"
                return ""

            if group == "override":
                lines.append(f"| {group} | {figure} | on: {cell('senryu')} | | off: {cell('jax')} "
                             f"| | {ratio('senryu', 'jax')} | |")
            else:
                lines.append(f"| {group} | {figure} | {cell('senryu')} | {cell('haiku')} | "
                             f"{cell('jax')} | {ratio('senryu', 'haiku')} | {ratio('senryu', 'jax')} "
                             f"| {best_ratio('senryu', 'haiku')} |")
    return "\n".join(lines)


def overhead_table(results: dict) -> str:
    """For figures with a hand-written JAX baseline: what each library adds on top of it."""
    lines = ["| group | figure | senryu − JAX | dm-haiku − JAX | senryu / haiku overhead |",
             "| --- | --- | --- | --- | --- |"]
    for group, by_lib in results.items():
        if not {"senryu", "haiku", "jax"} <= set(by_lib) or group in ("override", "wrappers"):
            continue
        medians = {lib: {} for lib in by_lib}
        for lib, runs in by_lib.items():
            for figure in {f for run in runs for f in run}:
                medians[lib][figure] = statistics.median(run[figure] for run in runs
                                                         if figure in run)
        for figure in sorted(set(medians["jax"]) & set(medians["senryu"]) & set(medians["haiku"])):
            ours = medians["senryu"][figure] - medians["jax"][figure]
            theirs = medians["haiku"][figure] - medians["jax"][figure]
            if ours <= 0 and theirs <= 0:
                ratio = "neither adds time (both at or under the hand-written figure: noise)"
            elif theirs <= 0:
                ratio = "n/a (dm-haiku at or under the hand-written figure)"
            else:
                ratio = f"{ours / theirs:.2f}"
            lines.append(f"| {group} | {figure} | {ours:.3g} | {theirs:.3g} | {ratio} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds of A/B runs (default 3)")
    parser.add_argument("--groups", default=",".join(LIBS),
                        help=f"comma-separated groups (default all: {','.join(LIBS)})")
    parser.add_argument("--compile-rounds", type=int, default=1,
                        help="rounds that also measure compile_* figures (default 1: XLA "
                             "compiles take tens of seconds and are the same work for both)")
    parser.add_argument("--json", help="also write the raw results to this file")
    args = parser.parse_args(argv)
    groups = [g for g in args.groups.split(",") if g]
    unknown = [g for g in groups if g not in LIBS]
    if unknown or args.rounds < 1:
        parser.error(f"unknown groups {unknown}" if unknown else "--rounds must be >= 1")
    results = {g: {lib: [] for lib in LIBS[g]} for g in groups}
    start = time.time()
    for round_index in range(args.rounds):
        for group in groups:
            order = LIBS[group] if round_index % 2 == 0 else list(reversed(LIBS[group]))
            for lib in order:
                print(f"[{time.time() - start:6.0f}s] round {round_index + 1} {group} {lib}",
                      file=sys.stderr, flush=True)
                results[group][lib].append(
                    measure(lib, group, compile_figures=round_index < args.compile_rounds))
    print(f"Benchmarks of {datetime.date.today()}: {versions()}; {args.rounds} rounds "
          f"(compile_* figures: {min(args.compile_rounds, args.rounds)}), "
          f"{time.time() - start:.0f} s.\n")
    print("Times in ms (trace, compile) or us (step, eager, plain calls): median (min–max).\n")
    print(table(results))
    print("\nLibrary overhead: the figure minus the hand-written JAX figure (same math, same "
          "params).\n")
    print(overhead_table(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
