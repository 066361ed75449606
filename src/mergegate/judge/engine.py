"""The judge phase of a run: ask, re-ask, escalate, and turn verdicts into judgements per check.

Requests go through the same concurrent client and response cache as the
candidates' (temperature 0; the key covers the judge model, the template
version inside the prompt, and both responses). An unparsable reply is
re-asked up to ``max_output_retries`` times with the problem named; after that
it is a judge error — never silently a score.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional

from ..checks import REGISTRY
from ..client import Job, Response, ResponseCache, generate_all
from ..config import GenerationOptions, JudgeConfig
from ..results import ROLES, CalibrationSummary, JudgeSummary, JudgeUsage
from ..serving import Endpoint
from . import prompts
from .calibration import LoadedCalibration
from .parse import JudgeParseError, parse_pairwise, parse_rubric
from .stats import agreement, cohen_kappa, combine_orders, fleiss_kappa, majority

__all__ = ["Task", "Answer", "JudgePhase", "run_judge_phase", "ask"]

MAX_TOKENS = 200


@dataclass(frozen=True)
class Task:
    """One verdict to obtain: ``kind`` is 'rubric' or 'pairwise'."""

    key: tuple
    kind: str
    messages: list[dict[str, str]]
    criteria: tuple[str, ...] = ()
    scale: int = 5

    def schema(self) -> dict[str, Any]:
        return prompts.rubric_schema(list(self.criteria), self.scale) if self.kind == "rubric" else prompts.pairwise_schema()

    def parse(self, text: str) -> Any:
        return parse_rubric(text, list(self.criteria), self.scale) if self.kind == "rubric" else parse_pairwise(text)


@dataclass
class Answer:
    """A parsed verdict, or the error that kept it from being one."""

    verdict: Any = None
    error: Optional[str] = None
    raw: str = ""
    answers: int = 0


@dataclass
class JudgePhase:
    """What the phase produced: ``judgements[(suite, case_id, check_index, role)]`` feed the judge checks."""

    judgements: dict[tuple, dict[str, Any]] = field(default_factory=dict)
    summary: Optional[JudgeSummary] = None
    failures: list[str] = field(default_factory=list)


def ask(tasks: list[Task], endpoint: Endpoint, cache: Optional[ResponseCache], opts: GenerationOptions, retries: int,
        usage: JudgeUsage, pricing: Any = None, progress: bool = False, structured: str = "auto") -> dict[tuple, Answer]:
    """Return an :class:`Answer` per task key, re-asking unparsable replies up to ``retries`` times."""
    out: dict[tuple, Answer] = {}
    pending = {t.key: (t, t.messages) for t in tasks}
    for attempt in range(retries + 1):
        if not pending:
            break
        sampling = {"temperature": 0.0, "top_p": 1.0, "seed": 0, "max_tokens": MAX_TOKENS}
        jobs = [Job(key, endpoint, msgs, {**sampling, "response_format": prompts.response_format(endpoint.engine, t.schema(), structured)})
                for key, (t, msgs) in pending.items()]
        responses, stats = generate_all(jobs, cache, opts, progress=progress, label="judging" + (f" (re-ask {attempt})" if attempt else ""))
        _count(usage, stats, responses, pricing)
        retry: dict[tuple, tuple[Task, list]] = {}
        for key, (t, msgs) in pending.items():
            r = responses[key]
            if r.error:  # the transport was already retried by the client
                out[key] = Answer(error=f"judge request failed: {r.error}", answers=attempt)
                continue
            try:
                out[key] = Answer(verdict=t.parse(r.text), raw=r.text, answers=attempt + 1)
            except JudgeParseError as exc:
                if attempt < retries:
                    retry[key] = (t, prompts.repair_messages(msgs, r.text, str(exc)))
                else:
                    out[key] = Answer(error=f"judge reply unusable after {attempt + 1} answer(s): {exc}", raw=r.text, answers=attempt + 1)
        pending = retry
    return out


def _count(usage: JudgeUsage, stats: Any, responses: dict[tuple, Response], pricing: Any) -> None:
    usage.calls += stats.requests_sent
    usage.cache_hits += stats.cache_hits
    prompt = completion = 0
    for r in responses.values():
        if r.cached or r.error:
            continue  # a cache hit costs nothing this run
        prompt += r.prompt_tokens or 0
        completion += r.completion_tokens or 0
    usage.prompt_tokens += prompt
    usage.completion_tokens += completion
    if pricing is not None:
        usage.estimated_cost_usd = round(usage.estimated_cost_usd + prompt / 1e6 * pricing.input_per_mtok
                                         + completion / 1e6 * pricing.output_per_mtok, 6)


def _tasks_for_cases(selected: list, outputs: Callable[..., Optional[str]]) -> list[Task]:
    tasks: list[Task] = []
    for ls, case in selected:
        for idx, spec in enumerate(case.checks):
            kind = REGISTRY[spec.type].judge
            if kind is None:
                continue
            texts = {role: outputs(role, ls.name, case.id, spec.turn) for role in ROLES}
            prompt = case.judge_prompt(spec.turn)
            if kind == "rubric":
                reference = case.reference if spec.use_reference else None
                for role in ROLES:
                    text = texts[role]
                    if text is not None:
                        tasks.append(Task(("rubric", ls.name, case.id, idx, role), "rubric",
                                          prompts.rubric_messages(prompt, text, spec.criteria, spec.scale, reference),
                                          tuple(spec.criteria), spec.scale))
            elif kind == "pairwise" and texts["candidate"] is not None and texts["baseline"] is not None:
                cand, base = texts["candidate"], texts["baseline"]
                for order, (a, b) in (("AB", (cand, base)), ("BA", (base, cand))):
                    tasks.append(Task(("pairwise", ls.name, case.id, idx, order), "pairwise",
                                      prompts.pairwise_messages(prompt, a, b, spec.criteria)))
    return tasks


def _calibration_tasks(sets: list[LoadedCalibration]) -> list[Task]:
    tasks = []
    for cal in sets:
        for it in cal.set.items:
            for order, (a, b) in (("AB", (it.response_a, it.response_b)), ("BA", (it.response_b, it.response_a))):
                tasks.append(Task(("calibration", str(cal.path), it.id, 0, order), "pairwise",
                                  prompts.pairwise_messages(it.prompt, a, b, cal.set.criteria)))
    return tasks


def run_judge_phase(cfg: JudgeConfig, endpoints: dict[str, Endpoint], selected: list, outputs: Callable[..., Optional[str]],
                    calibration: list[LoadedCalibration], cache: Optional[ResponseCache], opts: GenerationOptions,
                    progress: bool = False, calibration_problem: str = "") -> JudgePhase:
    """Judge every judge check of ``selected`` cases and the calibration sets; return the judgements and the summary."""
    judge, strong = endpoints["judge"], endpoints.get("judge_strong")
    usage = JudgeUsage(error_tolerance=cfg.error_tolerance)
    tasks = _tasks_for_cases(selected, outputs) + _calibration_tasks(calibration)
    answers = ask(tasks, judge, cache, opts, cfg.max_output_retries, usage, cfg.pricing, progress, cfg.structured_output)
    escalated: set[tuple] = set()
    if strong is not None and cfg.cascade is not None:
        escalated = _cascade(cfg, strong, selected, tasks, answers, cache, opts, usage, progress)
    phase = JudgePhase(judgements=_judgements(selected, answers, escalated))
    usage.errors = sum(1 for a in answers.values() if a.error)
    cal = _calibration_summary(cfg, calibration, answers, calibration_problem)
    phase.summary = JudgeSummary(model=judge.model, strong_model=strong.model if strong else None, prompt_version=prompts.PROMPT_VERSION,
                                 usage=usage, calibration=cal)
    if usage.errors > cfg.error_tolerance:
        first = next(a.error for a in answers.values() if a.error)
        phase.failures.append(f"{usage.errors} judge verdict(s) unusable (tolerance {cfg.error_tolerance}); first: {first}")
    return phase


def _uncertain(cfg: JudgeConfig, selected: list, answers: dict[tuple, Answer]) -> list[tuple]:
    """Return the task keys where the first judge is uncertain: pairwise orders that disagree, rubric scores near the threshold."""
    assert cfg.cascade is not None
    keys: list[tuple] = []
    for ls, case in selected:
        for idx, spec in enumerate(case.checks):
            kind = REGISTRY[spec.type].judge
            if kind == "pairwise":
                ab, ba = answers.get(("pairwise", ls.name, case.id, idx, "AB")), answers.get(("pairwise", ls.name, case.id, idx, "BA"))
                if ab and ba and ab.verdict and ba.verdict and not combine_orders(ab.verdict.winner, ba.verdict.winner)[1]:
                    keys += [("pairwise", ls.name, case.id, idx, o) for o in ("AB", "BA")]
            elif kind == "rubric" and spec.threshold is not None:
                for role in ROLES:
                    a = answers.get(("rubric", ls.name, case.id, idx, role))
                    if a and a.verdict and abs(_rubric_score(a.verdict.scores, spec.scale) - spec.threshold) < cfg.cascade.margin:
                        keys.append(("rubric", ls.name, case.id, idx, role))
    return keys


def _cascade(cfg: JudgeConfig, strong: Endpoint, selected: list, tasks: list[Task], answers: dict[tuple, Answer],
             cache: Optional[ResponseCache], opts: GenerationOptions, usage: JudgeUsage, progress: bool) -> set[tuple]:
    """Re-ask the strong judge where the first one is uncertain (its usable verdicts replace the first's); return the keys asked."""
    assert cfg.cascade is not None
    by_key = {t.key: t for t in tasks}
    escalate = [by_key[k] for k in _uncertain(cfg, selected, answers)]
    if escalate:
        strong_answers = ask(escalate, strong, cache, opts, cfg.max_output_retries, usage, cfg.cascade.pricing, progress,
                             cfg.structured_output)
        for key, a in strong_answers.items():
            if a.verdict is not None:
                a.raw = "[strong judge] " + a.raw
                answers[key] = a
        usage.escalated = len(escalate)
    return {t.key for t in escalate}


def _judgements(selected: list, answers: dict[tuple, Answer], escalated: set[tuple]) -> dict[tuple, dict[str, Any]]:
    """Return the verdict of every judge check per side: ``(suite, case_id, check_index, role) -> verdict``."""
    out: dict[tuple, dict[str, Any]] = {}
    for ls, case in selected:
        for idx, spec in enumerate(case.checks):
            kind = REGISTRY[spec.type].judge
            if kind == "rubric":
                for role in ROLES:
                    a = answers.get(("rubric", ls.name, case.id, idx, role))
                    if a is not None:
                        out[(ls.name, case.id, idx, role)] = {
                            "kind": "rubric", "error": a.error, "scale": spec.scale, "reason": a.verdict.reason if a.verdict else "",
                            "scores": dict(a.verdict.scores) if a.verdict else {},
                            "escalated": ("rubric", ls.name, case.id, idx, role) in escalated}
            elif kind == "pairwise":
                ab, ba = answers.get(("pairwise", ls.name, case.id, idx, "AB")), answers.get(("pairwise", ls.name, case.id, idx, "BA"))
                if ab is not None and ba is not None:
                    both = _pairwise_judgement(ab, ba, ("pairwise", ls.name, case.id, idx, "AB") in escalated)
                    out[(ls.name, case.id, idx, "candidate")], out[(ls.name, case.id, idx, "baseline")] = both
    return out


def _pairwise_judgement(ab: Answer, ba: Answer, escalated: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the candidate's and the baseline's side of one pairwise verdict judged in both orders."""
    error = ab.error or ba.error
    outcome, consistent = ("tie", False)
    if not error and ab.verdict and ba.verdict:
        outcome, consistent = combine_orders(ab.verdict.winner, ba.verdict.winner)
    common = {"kind": "pairwise", "error": error, "consistent": consistent,
              "verdict_candidate_first": ab.verdict.winner if ab.verdict else None,
              "verdict_candidate_second": ba.verdict.winner if ba.verdict else None,
              "reasons": [x.verdict.reason for x in (ab, ba) if x.verdict], "escalated": escalated}
    mirror = {"win": "loss", "loss": "win", "tie": "tie"}
    return {**common, "outcome": outcome}, {**common, "outcome": mirror[outcome]}


def _rubric_score(scores: dict[str, int], scale: int) -> float:
    return (sum(scores.values()) / len(scores) - 1) / (scale - 1)


def _calibration_labels(sets: list[LoadedCalibration], answers: dict[tuple, Answer], raters: int,
                        disagreements: list[str]) -> tuple[list[str], list[str], list[tuple[list[str], str]], int]:
    """Return the judge's labels, the human majorities, the full ratings (for Fleiss) and the items without a usable verdict.

    Items where the judge differs from the human majority are appended to ``disagreements``.
    """
    judge_labels: list[str] = []
    human_majorities: list[str] = []
    all_ratings: list[tuple[list[str], str]] = []
    errors = 0
    for cal in sets:
        for it in cal.set.items:
            ab, ba = (answers.get(("calibration", str(cal.path), it.id, 0, "AB")),
                      answers.get(("calibration", str(cal.path), it.id, 0, "BA")))
            if not ab or not ba or ab.error or ba.error or not ab.verdict or not ba.verdict:
                errors += 1
                continue
            outcome, _ = combine_orders(ab.verdict.winner, ba.verdict.winner)
            label = {"win": "A", "loss": "B", "tie": "tie"}[outcome]  # 'win' here: response_a won
            human = majority(it.human)
            if human is None:
                continue  # the raters split evenly: no reference verdict for this item
            judge_labels.append(label)
            human_majorities.append(human)
            if len(it.human) == raters:
                all_ratings.append((list(it.human), label))
            if label != human:
                disagreements.append(it.id)
    return judge_labels, human_majorities, all_ratings, errors


def _calibration_summary(cfg: JudgeConfig, sets: list[LoadedCalibration], answers: dict[tuple, Answer], problem: str) -> CalibrationSummary:
    """Return the judge's agreement with the human majority on the calibration sets."""
    opts = cfg.calibration
    summary = CalibrationSummary(files=[str(c.path) for c in sets], min_agreement=opts.min_agreement, on_uncalibrated=opts.on_uncalibrated)
    if problem or not sets:
        summary.reason = problem or "no calibration set (*.calibration.yaml): the judge cannot be trusted without one"
        return summary
    raters = max(c.raters for c in sets)
    judge_labels, human_majorities, all_ratings, errors = _calibration_labels(sets, answers, raters, summary.disagreements)
    summary.n, summary.raters = len(judge_labels), raters
    summary.agreement = agreement(judge_labels, human_majorities)
    summary.cohen_kappa = cohen_kappa(judge_labels, human_majorities)
    if raters >= 3 and len(all_ratings) >= 2:
        summary.fleiss_kappa = fleiss_kappa([h + [j] for h, j in all_ratings])
        summary.human_fleiss_kappa = fleiss_kappa([h for h, _ in all_ratings])
    if errors:
        summary.reason = f"{errors} calibration item(s) got no usable verdict"
    elif summary.agreement is None:
        summary.reason = "no calibration item has a human majority"
    else:
        summary.calibrated = summary.agreement >= opts.min_agreement
        summary.reason = (f"agreement with humans {summary.agreement:.0%} on {summary.n} item(s)"
                          f" {'≥' if summary.calibrated else '<'} {opts.min_agreement:.0%}")
    return summary
