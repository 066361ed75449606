"""The verdict: GO, NO-GO, INCOMPLETE (or PENDING for one shard), decided here and nowhere else.

Every policy that turns evidence into a merge decision lives in :func:`decide`:
request-error tolerance, failures that kept the run from completing, gates that
could not be evaluated, failed gates and blocking cases, insufficient evidence,
advisory judge gates, contamination, and shards. The pytest plugin, the CLI,
``mergegate merge`` and the PR comment all read the :class:`Verdict` it returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from .config import Config
    from .results.models import CaseResult, GateResult, NoiseFloor, ShardMeta, VerdictName

__all__ = ["EXIT_CODES", "Verdict", "Policy", "Evidence", "decide", "apply_holm", "exit_code_of_pytest"]

# PENDING: one shard's results; `mergegate merge` decides. It exits 0 so the shard job succeeds and the gate job runs.
EXIT_CODES: dict[str, int] = {"GO": 0, "NO-GO": 1, "INCOMPLETE": 2, "PENDING": 0}


@dataclass(frozen=True)
class Verdict:
    """The decision and why: ``outcome``, the process ``exit_code``, and ``reasons`` a person can read."""

    outcome: VerdictName
    reasons: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        """Return 0 GO (and PENDING), 1 NO-GO, 2 INCOMPLETE."""
        return EXIT_CODES[self.outcome]


@dataclass(frozen=True)
class Policy:
    """The config's decision options (see ``generation``, ``stats`` and ``contamination`` in mergegate.yaml)."""

    error_tolerance: int = 0
    insufficient_blocks: bool = False
    on_contaminated: str = "report"
    underpowered_blocks: bool = False
    holm: bool = False
    level: float = 0.95
    min_gates: int = 1
    truncated: str = "fail"
    """``generation.truncated``: whether an answer cut off at max_tokens failed its case ("fail") or was scored ("allow")."""
    """Gates that must have run for a verdict (a run whose every gate was skipped decided nothing)."""

    @classmethod
    def from_config(cls, config: Config) -> Policy:
        """Return the policy ``config`` asks for."""
        return cls(error_tolerance=config.generation.error_tolerance,
                   insufficient_blocks=config.stats.insufficient_evidence == "block",
                   on_contaminated=config.contamination.on_contaminated, underpowered_blocks=config.stats.underpowered == "block",
                   holm=config.stats.holm, level=config.stats.level, min_gates=config.min_gates,
                   truncated=config.generation.truncated)


@dataclass(frozen=True)
class Evidence:
    """What the run produced that the decision reads (never the view gates were handed)."""

    cases: Sequence[CaseResult]
    """The cases that count (contaminated ones already left out under ``on_contaminated: exclude``)."""
    gates: Sequence[GateResult] = ()
    failures: Sequence[str] = ()
    """What kept the run from completing: server death, judge or benchmark errors, load errors, interruption."""
    request_errors: int = 0
    contaminated: int = 0
    """Cases found in the candidate's training data (when a check ran)."""
    shard: Optional[ShardMeta] = None
    cases_evaluated: int = field(default=-1)
    """All cases evaluated, counted or not (-1: same as ``len(cases)``)."""
    noise_floor: Optional[NoiseFloor] = None
    """On an A/A run: how many cases got two different answers from the same config."""
    partial: Sequence[str] = ()
    """What the run left out on purpose (--limit, --no-judge, --no-benchmarks): what blocks still blocks, a GO it cannot give."""


def decide(ev: Evidence, policy: Policy = Policy()) -> Verdict:
    """Return the verdict for ``ev`` under ``policy``.

    INCOMPLETE when anything kept the evaluation from completing, or when
    nothing blocked but fewer than ``min_gates`` gates ran, or the run was
    partial on purpose (never GO);
    NO-GO when a gate or a blocking case failed, or a gate lacked evidence under
    ``insufficient_evidence: block``, or contaminated cases under ``on_contaminated: fail``;
    GO otherwise. A shard's complete run is PENDING: its gates run at merge.
    """
    incomplete = _incomplete(ev, policy)
    if incomplete:
        return Verdict("INCOMPLETE", tuple(incomplete))
    if ev.shard is not None:
        return Verdict("PENDING", (f"shard {ev.shard.index}/{ev.shard.total}: {_evaluated(ev)} case(s) evaluated; "
                                   "the verdict is decided by mergegate merge",))
    excluded = ([f"{ev.contaminated} contaminated case(s) left out of metrics and gates"]
                if ev.contaminated and policy.on_contaminated == "exclude" else [])
    nf = ev.noise_floor
    noise = ([f"A/A run (--aa): {nf.differing} of {nf.cases} case(s) got two different answers from the same config "
              f"({nf.share:.1%}), {nf.passed_differently} pass on one side only: the noise floor of this engine"] if nf else [])
    notes = excluded + noise + _truncation(ev, policy)
    no_go = _blocking(ev, policy)
    if no_go:
        return Verdict("NO-GO", tuple(no_go + notes))
    too_few = _too_few_gates(ev, policy)  # what blocks needs no gate; a GO does
    if too_few:
        return Verdict("INCOMPLETE", tuple(too_few + notes))
    if ev.partial:  # an iteration run: the gates it ran passed, but what it skipped could still block
        return Verdict("INCOMPLETE", (f"partial run ({'; '.join(ev.partial)}): no GO without the full evaluation",
                                      *_passing(ev), *notes))
    return Verdict("GO", tuple(_passing(ev) + notes))


def _truncation(ev: Evidence, policy: Policy) -> list[str]:
    """Return the note on answers cut off at max_tokens (never silent: half an answer can pass a check)."""
    cut = {role: sum(getattr(c, role).generation.finish_reason == "length" for c in ev.cases) for role in ("candidate", "baseline")}
    if not any(cut.values()):
        return []
    effect = "their cases failed (generation.truncated: fail)" if policy.truncated == "fail" else \
        "scored as they are (generation.truncated: allow)"
    # "note:" - it explains failed cases, it is not itself why the merge is (or is not) blocked
    return [f"note: {cut['candidate']} candidate and {cut['baseline']} baseline answer(s) of {len(ev.cases)} were cut off at "
            f"max_tokens: {effect}; give the answers room with a higher max_tokens (a suite's defaults.sampling, or a model's "
            "sampling in mergegate.yaml; default 256), unless they repeat themselves: then no length ends them"]


def _evaluated(ev: Evidence) -> int:
    return len(ev.cases) if ev.cases_evaluated < 0 else ev.cases_evaluated


def _incomplete(ev: Evidence, policy: Policy) -> list[str]:
    """Return what kept the run from completing (empty: it completed)."""
    reasons = list(ev.failures)
    if ev.request_errors > policy.error_tolerance:
        reasons.append(f"{ev.request_errors} request(s) failed (tolerance {policy.error_tolerance})")
    reasons += [f"gate {g.name} could not be evaluated: {_first_line(g.message) or 'error'}" for g in ev.gates if g.outcome == "error"]
    if ev.shard is None and not _evaluated(ev) and not reasons:
        reasons.append("no case was evaluated")
    return reasons


def _too_few_gates(ev: Evidence, policy: Policy) -> list[str]:
    """Return why a run that nothing blocked still cannot be GO: fewer gates ran than ``min_gates`` (every one skipped, say)."""
    ran = sum(g.outcome != "skipped" for g in ev.gates)
    if ran >= policy.min_gates:
        return []
    skipped = sum(g.outcome == "skipped" for g in ev.gates)
    return [f"{ran} gate(s) ran, {skipped} skipped: at least {policy.min_gates} must run for a GO (min_gates in mergegate.yaml; "
            "0 lets the cases alone decide)"]


def _blocking(ev: Evidence, policy: Policy) -> list[str]:
    """Return why the merge is blocked (empty: nothing blocks)."""
    no_go = [f"gate failed: {g.name}" for g in ev.gates if g.outcome == "failed"]
    no_go += [f"blocking case failed: {c.suite}::{c.id}" for c in ev.cases if c.blocking and c.candidate.passed is False]
    if policy.insufficient_blocks:
        no_go += [f"insufficient evidence (stats.insufficient_evidence: block): {g.name}" for g in ev.gates if g.outcome == "insufficient"]
    if policy.underpowered_blocks:
        no_go += [f"underpowered (stats.underpowered: block): {g.name}: {g.underpowered}" for g in ev.gates
                  if g.underpowered and g.outcome in ("passed", "insufficient")]
    if ev.contaminated and policy.on_contaminated == "fail":
        no_go.append(f"{ev.contaminated} eval case(s) found in the candidate's training data (contamination.on_contaminated: fail)")
    return no_go


def _passing(ev: Evidence) -> list[str]:
    """Return what a GO rests on."""
    advisory = sum(g.outcome == "advisory" for g in ev.gates)
    note = f"; {advisory} advisory gate(s) on an uncalibrated judge did not count" if advisory else ""
    reasons = [f"{sum(g.outcome == 'passed' for g in ev.gates)} gate(s) passed, no blocking case failed{note}"]
    unsure = sum(g.outcome == "insufficient" for g in ev.gates)
    if unsure:
        reasons.append(f"{unsure} gate(s) had insufficient evidence (no interval: too few cases); not blocking")
    weak = [g for g in ev.gates if g.underpowered and g.outcome == "passed"]
    if weak:
        reasons.append(f"{len(weak)} gate(s) passed on an underpowered suite (stats.underpowered: warn): "
                       + "; ".join(f"{g.name}: {g.underpowered}" for g in weak))
    return reasons


def apply_holm(gates: Sequence[GateResult], findings: dict[str, list[tuple[str, bool, Optional[float]]]],
               policy: Policy) -> list[GateResult]:
    """Return ``gates`` with conclusions that do not survive Holm's correction undone (with ``policy.holm``).

    ``findings``: per gate, every ``regressed()`` / ``improved()`` call as
    ``(what, found, one-sided p)``. The family is all of them, conclusive or
    not, tested at the one-sided level each rule uses ((1 - level) / 2). A
    regression that does not survive no longer fails its gate (insufficient
    evidence); an improvement that does not survive no longer passes its gate.
    """

    family = [(name, what, found, p) for name, fs in findings.items() for what, found, p in fs if p is not None]
    if not policy.holm or not family:
        return list(gates)
    from .stats import holm

    keep = holm([p for *_, p in family], alpha=(1 - policy.level) / 2)
    lost = {(name, what) for (name, what, found, _), ok in zip(family, keep, strict=True) if found and not ok}
    note = f"not significant after Holm's correction over {len(family)} comparisons"
    out = []
    for g in gates:
        if g.outcome == "failed" and (g.name, "regressed") in lost:
            g = g.model_copy(update={"outcome": "insufficient", "message": f"{note}: {g.message}"})
        elif g.outcome == "passed" and (g.name, "improved") in lost:
            g = g.model_copy(update={"outcome": "failed", "message": f"{note}: the improvement is not shown"})
        out.append(g)
    return out


def exit_code_of_pytest(code: int) -> int:
    """Return the verdict's exit code for a pytest session's: its usage (4) and internal (3) errors could not complete."""
    return code if code in (0, 1, 2) else EXIT_CODES["INCOMPLETE"]


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else ""
