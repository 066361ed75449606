"""The one registry of check types.

A check is a plain function decorated with :func:`check`. Its keyword
parameters (after the :class:`CheckContext`) become the fields a suite may set
for it, so the function signature *is* the YAML vocabulary and the JSON Schema::

    @check("contains")
    def contains(ctx: CheckContext, value: str, case_sensitive: bool = False) -> bool:
        '''Passes when the output contains ``value``.'''
        ...

Every check also accepts ``metric`` (the name its score is reported under;
default: the type) and ``turn`` (multi-turn cases: which answer it checks). Score checks (``kind="score"``) also accept ``threshold``:
with one the check passes or fails; without one it only feeds suite metrics.

Returns of a check function: ``bool`` (pass/fail, score 1 or 0), ``float``
(a score in [0, 1]) or a :class:`Outcome` with details.
"""

from __future__ import annotations

import contextlib
import inspect
import signal
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import ConfigDict, Field, create_model

from .._compact import CompactModel
from ..errors import IncompleteError

__all__ = ["check", "CheckContext", "Outcome", "CheckType", "REGISTRY", "CheckSpecBase", "run_check", "SuiteMetric", "side_metric",
           "group_metric"]


@dataclass(frozen=True)
class CheckContext:
    """What a check sees: the model's output and the case it answers."""

    output: str
    reference: Optional[str]
    latency_ms: Optional[float]
    suite_dir: Path
    case_id: str = ""
    prompt: str = ""
    # tool calls the API returned (``[{"name", "arguments"}]``, arguments as the JSON text); None when it returned none
    tool_calls: Optional[list[dict[str, Any]]] = None
    # judge checks only: this check's verdict for this side, from the judge phase (see mergegate.judge.engine)
    judgement: Optional[dict[str, Any]] = None
    # the tools the case offered, by name: their JSON Schema of arguments (None when it offered none)
    tools: Optional[dict[str, dict[str, Any]]] = None
    # whether this model was asked to write its calls as JSON in the text (tool_format: prompt), not as API tool_calls
    calls_in_text: bool = True


@dataclass
class Outcome:
    """A check's result: ``score`` in [0, 1]; ``passed`` is None for score-only checks."""

    score: Optional[float]
    passed: Optional[bool] = None
    detail: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class CheckSpecBase(CompactModel):
    """Fields every check accepts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str  # each registered check narrows it to its own name (a Literal): the discriminator of the union
    metric: Optional[str] = Field(
        default=None,
        description="Name the score is reported under in suite metrics (default: the check type).",
        pattern=r"^[A-Za-z0-9_.-]+$",
    )
    turn: Optional[int] = Field(default=None, ge=1, description="Multi-turn cases: the turn whose answer is checked (default: the last).")

    @property
    def metric_name(self) -> str:
        """Return the metric this check's score is aggregated under."""
        return self.metric or self.type


@dataclass(frozen=True)
class SuiteMetric:
    """A suite-level metric a check type declares (as inspect_ai's ``@scorer(metrics=[...])``).

    Aggregation computes the declared metrics of every check type a group of
    cases uses, so it names no check itself. Two scopes:

    - ``side``: ``fn(results)`` gets one model's results of this check in the
      group (a list of ``CheckResult``) and returns named values (e.g.
      ``{"macro_f1": 0.8}``), reported candidate vs baseline under ``metrics``;
    - ``group``: ``fn(cases)`` gets the group's ``CaseResult`` list and returns
      the value of the summary field ``field`` (``pairwise``, ``rubric``,
      ``code``), or None when it has nothing to say.
    """

    scope: Literal["side", "group"]
    fn: Callable[[list[Any]], Any]
    field: Optional[str] = None


def side_metric(fn: Callable[[list[Any]], dict[str, float]]) -> SuiteMetric:
    """Declare ``fn(check_results) -> {name: value}``, computed per model over a group's results of the check."""
    return SuiteMetric("side", fn)


def group_metric(field: str, fn: Callable[[list[Any]], Any]) -> SuiteMetric:
    """Declare ``fn(case_results) -> value`` of the group summary's ``field``."""
    return SuiteMetric("group", fn, field)


@dataclass(frozen=True)
class CheckType:
    """One registered check: its function, its spec model and how it behaves."""

    name: str
    fn: Callable[..., Any]
    spec: type[CheckSpecBase]
    kind: Literal["bool", "score"]
    uses_reference: bool
    prepare: Optional[Callable[[Any, Path], Any]]
    doc: str
    judge: Optional[Literal["rubric", "pairwise"]] = None
    takes_prepared: bool = False
    """The function has a ``prepared`` parameter (what ``prepare`` returned at load time)."""
    metrics: tuple[SuiteMetric, ...] = ()
    """Suite-level metrics over this check's results (see :class:`SuiteMetric`)."""
    static_prepare: Optional[Callable[[Any, Path], Any]] = None
    """What ``mergegate validate`` runs instead of ``prepare`` when that would run the team's code (see checks/static.py)."""


REGISTRY: dict[str, CheckType] = {}


def check(
    name: str,
    *,
    kind: Literal["bool", "score"] = "bool",
    uses_reference: bool = False,
    prepare: Optional[Callable[[Any, Path], Any]] = None,
    judge: Optional[Literal["rubric", "pairwise"]] = None,
    metrics: Sequence[SuiteMetric] = (),
    static_prepare: Optional[Callable[[Any, Path], Any]] = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``fn`` as check type ``name``; returns the function unchanged.

    ``uses_reference``: the check compares against ``value`` or, when that is
    omitted, the case's ``reference``. ``prepare(spec, suite_dir)`` runs at load
    time and raises ``ValueError`` for a bad spec (e.g. a missing schema file);
    whatever it returns is passed to the function as ``prepared``.
    ``judge``: the check reads an LLM judge's verdict (``ctx.judgement``), which
    the run obtains for every such check before scoring.
    ``metrics``: suite-level metrics over every result of this check in a
    suite or category (:func:`side_metric`, :func:`group_metric`).
    ``static_prepare(spec, suite_dir)``: validation's stand-in for a ``prepare``
    that would run the team's code (it reads source instead; raises ``ValueError``).
    """

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        if name in REGISTRY:
            raise ValueError(f"check type {name!r} registered twice")
        fields: dict[str, Any] = {"type": (Literal[name], Field(description=(fn.__doc__ or name).strip().splitlines()[0]))}
        params = list(inspect.signature(fn, eval_str=True).parameters.values())[1:]
        for p in params:
            if p.name == "prepared":
                continue
            default = ... if p.default is inspect.Parameter.empty else p.default
            fields[p.name] = (p.annotation, default)
        if kind == "score":
            fields["threshold"] = (
                Optional[float],
                Field(default=None, ge=0, le=1, allow_inf_nan=False,
                      description="Pass when the score (in [0, 1]) is at least this; omit to only report the score."),
            )
        model = create_model(f"{_camel(name)}Check", __base__=CheckSpecBase, **fields)
        model.__doc__ = (fn.__doc__ or name).strip()
        takes_prepared = any(p.name == "prepared" for p in params)
        REGISTRY[name] = CheckType(name, fn, model, kind, uses_reference, prepare, model.__doc__, judge, takes_prepared,
                                   tuple(metrics), static_prepare)
        return fn

    return register


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


class CheckOverBudget(BaseException):
    """A check ran past its time budget (a BaseException: a check's own ``except Exception`` cannot swallow it)."""


@contextlib.contextmanager
def _time_budget(seconds: Optional[float]) -> Iterator[None]:
    """Raise :class:`CheckOverBudget` in the block after ``seconds`` of wall time (main thread only; else no budget).

    A timer signal interrupts Python code and the ``re`` engine alike (it checks for signals while it
    backtracks), so a runaway regex or a check's infinite loop ends here instead of hanging the run.
    """
    if not seconds or threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def expire(signum: int, frame: object) -> None:
        raise CheckOverBudget

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def run_check(spec: CheckSpecBase, ctx: CheckContext, prepared: Any = None, budget_s: Optional[float] = None) -> Outcome:
    """Return the :class:`Outcome` of ``spec`` on ``ctx`` (exceptions, and running past ``budget_s`` seconds, fail it).

    A check with a ``timeout_s`` of its own (code_tests: the sandbox's limit) gets that on top of the budget.
    """
    ctype = REGISTRY[spec.type]
    if ctype.judge is not None and ctx.judgement is not None and ctx.judgement.get("error"):
        # fail closed: a verdict the judge could not give is an error, never a score
        return Outcome(score=None, passed=False if getattr(spec, "threshold", None) is not None else None,
                       detail=f"judge error: {ctx.judgement['error']}", extra={"judge_error": True})
    kwargs = {k: getattr(spec, k) for k in type(spec).model_fields if k not in ("type", "metric", "threshold", "turn")}
    if ctype.takes_prepared:
        kwargs["prepared"] = prepared
    budget = budget_s + float(getattr(spec, "timeout_s", 0) or 0) if budget_s else None
    try:
        with _time_budget(budget):
            raw = ctype.fn(ctx, **kwargs)
    except IncompleteError:  # the check could not run at all here (e.g. no sandbox backend): the run is incomplete
        raise
    except CheckOverBudget:
        return Outcome(score=0.0, passed=False, detail=f"the check ran past its time budget ({budget:g} s; check_timeout_s) "
                                                       "and was stopped: a runaway check fails its case")
    except Exception as exc:  # a custom check's bug must not end the run; it fails the case visibly
        return Outcome(score=0.0, passed=False, detail=f"check raised {type(exc).__name__}: {exc}")
    return _normalised(raw, ctype, spec)


def _normalised(raw: Any, ctype: CheckType, spec: CheckSpecBase) -> Outcome:
    """Return what a check function returned (an Outcome, a bool or a score) as an Outcome, its threshold applied."""
    if isinstance(raw, Outcome):
        out = raw
    elif isinstance(raw, bool):
        out = Outcome(score=1.0 if raw else 0.0, passed=raw)
    else:
        out = Outcome(score=float(raw))
    if ctype.kind == "score" and out.passed is None and out.score is not None:
        threshold = getattr(spec, "threshold", None)
        if threshold is not None:
            out.passed = out.score >= threshold
            out.detail = out.detail or f"{spec.metric_name}={out.score:.3f} (threshold {threshold})"
    return out
