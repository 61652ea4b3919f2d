"""Did showing the offer change adoption? Shown versus held-out, with a confidence interval.

The method: each offer decided at delivery is one trial, in the group it was decided into
(intention to treat: a shown offer counts whether or not the user looked at it, so both
groups are defined at the same moment and nothing the user did afterwards picks who is in
which). The adoption rate of each group is a proportion; the lift is their difference,
p_shown − p_held_out, with Newcombe's hybrid score interval (Newcombe 1998, method 10),
built from the two Wilson score intervals. Unlike the Wald interval it stays inside
[−1, 1] and keeps close to its nominal coverage for small groups and rates near 0 or 1,
which is where a new trigger's numbers are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Optional, Tuple

METHOD = (
    "difference of adoption rates, shown minus held out, per offer decided at delivery "
    "(intention to treat); Newcombe hybrid score interval from two Wilson intervals"
)


@dataclass(frozen=True)
class Lift:
    difference: Optional[float]  # p_shown - p_held_out; None when a group has no offers
    low: Optional[float]
    high: Optional[float]
    relative: Optional[float]  # p_shown / p_held_out - 1; None when the held-out rate is 0
    confidence: float


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> Tuple[float, float]:
    """The Wilson score interval of a proportion (trials > 0)."""
    if trials <= 0:
        raise ValueError("a proportion needs at least one trial")
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be within 0..{trials}, got {successes}")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def adoption_lift(shown_adopted: int, shown: int, held_adopted: int, held: int, confidence: float = 0.95) -> Lift:
    """The lift of showing over holding out, with its interval (see the module's method)."""
    if shown <= 0 or held <= 0:
        return Lift(None, None, None, None, confidence)
    p1, p2 = shown_adopted / shown, held_adopted / held
    l1, u1 = wilson_interval(shown_adopted, shown, confidence)
    l2, u2 = wilson_interval(held_adopted, held, confidence)
    difference = p1 - p2
    low = difference - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2)
    high = difference + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2)
    relative = p1 / p2 - 1 if p2 > 0 else None
    return Lift(difference, max(-1.0, low), min(1.0, high), relative, confidence)
