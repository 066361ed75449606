"""`mergegate comment`, `history`, `human`: what is done with a results.json after a run."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from ..errors import GitHubError, InputError

if TYPE_CHECKING:
    pass


def cmd_comment(args: argparse.Namespace) -> int:
    """Post or update the PR's one mergegate comment from a results.json; return 0, or 3 if it was not posted."""
    from ..github import GitHubClient, RetryPolicy, check_head_sha, upsert_comment
    from ..github.api import DEFAULT_API_URL
    from ..report import GITHUB_COMMENT_LIMIT, body_length, render_markdown
    from ..results import read_history
    from ..results.io import load_results

    path = Path(args.results)
    run = load_results(path)
    history = read_history(args.history, limit=20) if args.history and Path(args.history).exists() else None
    body = render_markdown(run, history=history, run_url=args.run_url, commit=args.expect_head_sha, limit=args.limit,
                           unverified=args.unverified)
    if args.dry_run:
        Path(args.dry_run).write_text(body, encoding="utf-8")
        print(f"wrote {args.dry_run} ({body_length(body)} of {GITHUB_COMMENT_LIMIT} characters)")
        return 0
    number = args.pr or (run.meta.ci.pr_number if run.meta.ci else None)
    repo = args.repo or os.environ.get("GITHUB_REPOSITORY")
    if not number or not repo:
        raise InputError("no pull request to comment on: pass --pr and --repo (or run in a pull_request workflow)", path)
    retry = RetryPolicy(attempts=args.attempts, backoff_s=args.backoff, secondary_wait_s=args.secondary_wait, max_wait_s=args.max_wait)
    try:
        with GitHubClient(os.environ.get("GITHUB_TOKEN", ""), os.environ.get("GITHUB_API_URL", DEFAULT_API_URL), retry=retry,
                          log=lambda m: print(m, file=sys.stderr)) as gh:
            if args.expect_head_sha:
                check_head_sha(gh, repo, int(number), args.expect_head_sha)
            done = upsert_comment(gh, repo, int(number), body)
    except GitHubError as exc:
        # Loud, and never a changed verdict: the gate's own check carries the verdict.
        print(f"::warning title=mergegate: PR comment not posted::{exc}", flush=True)
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with open(summary, "a", encoding="utf-8") as fh:
                fh.write(f"\n> [!WARNING]\n> The mergegate PR comment was not posted: {exc}\n")
        print(f"mergegate: error: PR comment not posted: {exc}", file=sys.stderr)
        return exc.exit_code
    print(f"comment {done.action} on {repo}#{number}: {done.url or done.comment_id} ({body_length(body)} characters)")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    """Append a run to the main line's history file."""
    from ..results import append_history
    from ..results.io import load_results

    path = Path(args.results)
    run = load_results(path)
    if run.verdict == "PENDING":
        raise InputError("a shard's results are not history: merge the shards first", path)
    entry = append_history(args.file, run)
    print(f"appended {entry.commit} to {args.file}" if entry else f"already recorded in {args.file}")
    return 0


def cmd_human(args: argparse.Namespace) -> int:
    """Export blind pairs for human raters, or import their completed ratings."""
    from ..judge.human import append_calibration, export_pairs, import_ratings
    from ..results.io import load_results

    if args.action == "export":
        if not args.paths:
            raise InputError("mergegate human export RESULTS.json --out FOLDER")
        run = load_results(args.paths[0])
        paths = export_pairs(run, Path(args.out), seed=args.seed, suites=args.suite or None,
                             criteria=args.criteria.split(",") if args.criteria else None, limit=args.limit)
        print(f"wrote {paths['csv']} and {paths['jsonl']} for raters (one copy each, fill in 'preference': 1, 2 or tie)")
        print(f"wrote {paths['mapping']}: keep it from the raters; `mergegate human import` needs it")
        return 0
    if not args.paths:
        raise InputError("mergegate human import RATED.csv [RATED2.csv ...] --mapping mapping.json")
    mapping = Path(args.mapping) if args.mapping else Path(args.paths[0]).parent / "mapping.json"
    summary, calibration = import_ratings([Path(p) for p in args.paths], mapping, max_disagreement=args.max_disagreement)

    def pct(v: Optional[float]) -> str:
        return "-" if v is None else f"{v * 100:.1f}%"

    print(f"{summary.ratings} rating(s) of {summary.items} item(s) by {len(summary.raters)} rater(s): "
          f"candidate {summary.candidate}, baseline {summary.baseline}, tie {summary.tie}")
    print(f"candidate preferred in {pct(summary.preference_rate)} of decided ratings "
          f"(95% Wilson CI {pct(summary.ci_low)}-{pct(summary.ci_high)}); "
          f"win rate with ties as half {pct(summary.win_rate)}")
    kappa = summary.cohen_kappa if summary.cohen_kappa is not None else summary.fleiss_kappa
    if kappa is not None:
        print(f"inter-rater agreement: {'Cohen' if summary.cohen_kappa is not None else 'Fleiss'}' kappa {kappa:.2f}")
    if summary.disagreements:
        print(f"raters disagree (more than {summary.max_disagreement:.0%} off the majority) on: {', '.join(summary.disagreements)}")
    if args.output:
        Path(args.output).write_text(summary.model_dump_json(indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.output}")
    if args.append_calibration:
        added, skipped = append_calibration(Path(args.append_calibration), calibration)
        print(f"appended {added} item(s) to {args.append_calibration}" + (f" ({skipped} already there)" if skipped else ""))
    return 0
