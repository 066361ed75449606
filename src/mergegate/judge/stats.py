"""Statistics of judge verdicts: position-swapped pairwise outcomes, win rates, length control, agreement with humans."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Optional

import numpy as np

__all__ = ["combine_orders", "win_rate", "length_controlled_win_rate", "majority", "agreement", "cohen_kappa", "fleiss_kappa"]

PREF = ("candidate", "baseline", "tie")


def combine_orders(ab: str, ba: str) -> tuple[str, bool]:
    """Return ``(outcome, consistent)`` for the candidate from two position-swapped verdicts.

    ``ab``: the verdict with the candidate as A; ``ba``: with the candidate as B.
    A win (or loss) counts only when both orders agree; any disagreement is a tie.
    """
    first = {"A": "win", "B": "loss", "tie": "tie"}[ab]
    second = {"A": "loss", "B": "win", "tie": "tie"}[ba]
    if first == second:
        return first, True
    return "tie", False


def win_rate(outcomes: Sequence[str]) -> Optional[float]:
    """Return the candidate's win rate with ties as half-wins, or None for no outcomes."""
    if not outcomes:
        return None
    c = Counter(outcomes)
    return (c["win"] + 0.5 * c["tie"]) / len(outcomes)


def length_controlled_win_rate(outcomes: Sequence[str], len_candidate: Sequence[float], len_baseline: Sequence[float]) -> Optional[float]:
    """Return the win rate the candidate would have at equal length, or None when it cannot be estimated.

    In the manner of AlpacaEval 2's length-controlled win rate: a logistic
    regression of the outcome (win 1, loss 0, a tie as half of each) on
    tanh(length difference / its standard deviation); the length-controlled win
    rate is the fitted probability at a length difference of zero, i.e.
    sigmoid(intercept). Needs at least 5 outcomes and some variation in both.
    """
    from sklearn.linear_model import LogisticRegression

    n = len(outcomes)
    if n < 5:
        return None
    diff = np.asarray(len_candidate, float) - np.asarray(len_baseline, float)
    sd = diff.std()
    raw = win_rate(outcomes)
    if sd == 0:
        return raw  # no length difference to control for
    x = np.tanh(diff / sd).reshape(-1, 1)
    ys, xs, ws = [], [], []
    for xi, o in zip(x, outcomes, strict=True):
        for y, w in ((1, {"win": 1.0, "tie": 0.5, "loss": 0.0}[o]), (0, {"win": 0.0, "tie": 0.5, "loss": 1.0}[o])):
            if w > 0:
                xs.append(xi)
                ys.append(y)
                ws.append(w)
    if len(set(ys)) < 2:
        return raw  # all wins or all losses: length cannot explain anything
    # a light L2 penalty keeps the fit finite when the outcome separates perfectly by length
    model = LogisticRegression(C=10.0).fit(np.asarray(xs), np.asarray(ys), sample_weight=np.asarray(ws))
    return float(1.0 / (1.0 + np.exp(-model.intercept_[0])))


def majority(labels: Sequence[str]) -> Optional[str]:
    """Return the label most raters gave, or None on a tie between the top labels."""
    top = Counter(labels).most_common()
    if not top or (len(top) > 1 and top[0][1] == top[1][1]):
        return None
    return top[0][0]


def agreement(a: Sequence[str], b: Sequence[str]) -> Optional[float]:
    """Return the share of items where ``a`` and ``b`` give the same label."""
    if not a:
        return None
    return sum(x == y for x, y in zip(a, b, strict=True)) / len(a)


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> Optional[float]:
    """Return Cohen's kappa of two raters (scikit-learn), or None for fewer than two items."""
    from sklearn.metrics import cohen_kappa_score

    if len(a) < 2:
        return None
    if len(set(a) | set(b)) == 1:
        return 1.0  # both raters always chose the same single label: perfect, though kappa is 0/0
    return float(cohen_kappa_score(list(a), list(b)))


def fleiss_kappa(ratings: Sequence[Sequence[str]], categories: Sequence[str] = ("A", "B", "tie")) -> Optional[float]:
    """Return Fleiss' kappa (statsmodels) of items rated by the same number of raters, or None if it is undefined."""
    from statsmodels.stats.inter_rater import fleiss_kappa as _fleiss

    if len(ratings) < 2 or len({len(r) for r in ratings}) != 1 or len(ratings[0]) < 2:
        return None
    table = np.array([[sum(1 for x in item if x == c) for c in categories] for item in ratings])
    value = float(_fleiss(table, method="fleiss"))
    return None if np.isnan(value) else value
