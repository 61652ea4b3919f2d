"""Shared pieces of the benchmarks: sizes, percentiles, figures, RSS and file limits."""

from __future__ import annotations

import ctypes
import gc
import json
import logging
import os
import resource
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results.json"
QUICK = os.environ.get("BENCH_QUICK", "") not in ("", "0", "false")

logger = logging.getLogger("bench")


def sized(full: Any, quick: Any) -> Any:
    """The issue's size by default; a smaller one under BENCH_QUICK=1."""
    return quick if QUICK else full


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of the samples; NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), int(-(-q * len(ordered) // 100))))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Summary:
    n: int
    p50: float
    p95: float
    p99: float
    max: float

    @classmethod
    def of(cls, values: Sequence[float]) -> "Summary":
        return cls(len(values), percentile(values, 50), percentile(values, 95), percentile(values, 99),
                   max(values) if values else float("nan"))


@dataclass
class Figure:
    """One printed number, with the baseline it was measured beside (if it has one)."""

    id: str
    label: str
    value: float
    unit: str
    baseline: Optional[float] = None
    baseline_label: str = ""
    target: str = ""
    met: Optional[bool] = None
    samples: int = 0
    detail: Dict[str, Any] = field(default_factory=dict)
    # Rounds that ran back to back (ours, then the baseline) share the machine's mood; the
    # median of their ratios is then the steadier figure, and the one reported when given.
    paired_ratio: Optional[float] = None

    @property
    def ratio(self) -> Optional[float]:
        if self.paired_ratio is not None:
            return self.paired_ratio
        if self.baseline is None or not self.baseline:
            return None
        return self.value / self.baseline

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data["ratio"] = self.ratio
        return data


def print_table(figures: List[Figure]) -> None:
    rows = [("figure", "value", "baseline", "ratio", "target", "ok", "n")]
    for f in figures:
        rows.append((
            f.label,
            _fmt(f.value, f.unit),
            f"{_fmt(f.baseline, f.unit)} ({f.baseline_label})" if f.baseline is not None else "—",
            f"{f.ratio:.3g}" if f.ratio is not None else "—",
            f.target or "—",
            {True: "yes", False: "NO", None: ""}[f.met],
            str(f.samples or ""),
        ))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))


def _fmt(value: Optional[float], unit: str) -> str:
    if value is None:
        return "—"
    if value != value:  # NaN
        return "n/a"
    if abs(value) >= 100:
        return f"{value:,.0f} {unit}".strip()
    return f"{value:.3g} {unit}".strip()


def write_results(figures: List[Figure], *, path: Path = RESULTS, meta: Optional[Dict[str, Any]] = None) -> None:
    """Merge this run's figures into results.json (a figure run alone replaces its old entry)."""
    existing: Dict[str, Any] = {}
    if path.exists():
        try:
            existing = json.loads(path.read_text())
        except ValueError:
            existing = {}
    by_id = {f["id"]: f for f in existing.get("figures", [])}
    by_id.update({f.id: f.to_dict() for f in figures})
    path.write_text(json.dumps({"meta": meta or existing.get("meta", {}), "figures": list(by_id.values())}, indent=2))


def raise_nofile() -> int:
    """Lift the soft open-file limit to the hard one (10k streams need 10k sockets)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def rss_bytes(pid: Optional[int] = None) -> int:
    """Resident set size of a process (this one by default), from /proc."""
    with open(f"/proc/{pid or 'self'}/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def release_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS, so RSS shows what is live."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


def setup_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("addons").setLevel(logging.WARNING)  # one line per offer would swamp the run
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # The SDK logs every state transition at WARNING (the channel silences it the same way).
    logging.getLogger("autoplay_sdk.agent_state.v2.session_state").setLevel(logging.ERROR)


def cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()  # after "pid (comm)": field 3 onwards
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


class CpuMeter:
    """CPU used by some processes (by name) since the meter was made."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self.pids = dict(pids)
        self.started = time.monotonic()
        self.before = {name: cpu_seconds(pid) for name, pid in self.pids.items()}

    def seconds(self) -> Dict[str, float]:
        return {name: cpu_seconds(pid) - self.before[name] for name, pid in self.pids.items()}

    def shares(self, wall_s: Optional[float] = None) -> Dict[str, float]:
        """CPU seconds per wall second (1.0 = one core busy), over ``wall_s`` or since the start."""
        wall = wall_s if wall_s is not None else time.monotonic() - self.started
        return {name: round(used / wall, 3) for name, used in self.seconds().items()}
