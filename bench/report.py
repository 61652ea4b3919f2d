"""bench/results.json as a Markdown table (for BENCHMARKS.md): ``python -m bench.report``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.common import RESULTS, Figure, _fmt


def markdown(path: Path = RESULTS) -> str:
    data = json.loads(path.read_text())
    lines = ["| figure | value | baseline | ratio | target | met | n |", "|---|---|---|---|---|---|---|"]
    for raw in data["figures"]:
        raw = dict(raw)
        raw.pop("ratio", None)
        f = Figure(**raw)
        baseline = f"{_fmt(f.baseline, f.unit)} ({f.baseline_label})" if f.baseline is not None else "—"
        ratio = f"{f.ratio:.3g}" if f.ratio is not None else "—"
        met = {True: "yes", False: "**no**", None: ""}[f.met]
        lines.append(f"| {f.label} | {_fmt(f.value, f.unit)} | {baseline} | {ratio} | {f.target or '—'} | {met} | {f.samples or ''} |")
    meta = data.get("meta", {})
    lines.append("")
    lines.append(f"Run of {meta.get('finished_at', '?')} at commit {meta.get('commit', '?')}, {meta.get('cpus', '?')} CPUs, "
                 f"Python {meta.get('python', '?')}, {meta.get('seconds', '?')} s{' (BENCH_QUICK)' if meta.get('quick') else ''}.")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS))
