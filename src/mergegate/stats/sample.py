"""A seeded, stratified sample of cases for cheap pull-request runs (``--sample N``)."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Hashable, Sequence

__all__ = ["stratified_sample"]


def stratified_sample(strata: Sequence[Hashable], size: int, seed: int = 0) -> list[int]:
    """Return the sorted positions of a ``size``-item sample of ``strata`` (one stratum label per item).

    Proportional allocation by largest remainder, at least one item per stratum
    when ``size`` allows, items drawn within each stratum by a seeded RNG: the
    same inputs give the same sample on every machine.
    """
    n = len(strata)
    if size >= n:
        return list(range(n))
    groups: dict[Hashable, list[int]] = defaultdict(list)
    for i, s in enumerate(strata):
        groups[s].append(i)
    keys = list(groups)  # first-appearance order: deterministic
    quota = {k: size * len(groups[k]) / n for k in keys}
    alloc = {k: int(quota[k]) for k in keys}
    if size >= len(keys):
        for k in keys:
            alloc[k] = max(alloc[k], 1)
    left = size - sum(alloc.values())
    for k in sorted(keys, key=lambda k: (-(quota[k] - int(quota[k])), keys.index(k))):
        if left <= 0:
            break
        if alloc[k] < len(groups[k]):
            alloc[k] += 1
            left -= 1
    while left < 0:  # the minimum of one per stratum overshot: take back from the largest allocations
        k = max(keys, key=lambda k: (alloc[k], -keys.index(k)))
        alloc[k] -= 1
        left += 1
    rng = random.Random(seed)
    chosen: list[int] = []
    for k in keys:
        chosen += rng.sample(groups[k], alloc[k])
    return sorted(chosen)
