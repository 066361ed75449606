"""The ``mergegate`` command: run, merge, comment, history, human, contamination, split, serve, stop, validate, schema.

User mistakes end with one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from typing import TYPE_CHECKING

from .errors import GitHubError, InputError, MergegateError

if TYPE_CHECKING:
    from .results import ShardMeta

# Heavy modules (scorers, numpy, the OpenAI client) are imported inside the commands that need them:
# `mergegate --help` and `mergegate comment` start in well under a second.

__all__ = ["main"]


def _sigterm_as_interrupt(signum: int, frame: object) -> None:
    # CI cancels with SIGTERM; turning it into KeyboardInterrupt runs every cleanup (servers stop).
    raise KeyboardInterrupt


def _pytest_session(args: argparse.Namespace, shard: Optional[ShardMeta] = None, sample: Optional[int] = None,
                    merge_from: Sequence[Path] = ()) -> int:
    """Validate inputs, then run the pytest session over suites and gates; return the verdict's exit code."""
    import pytest

    from .config import load_config
    from .session import RunOptions
    from .suites import discover_suites
    from .verdict import exit_code_of_pytest

    loaded = load_config(args.config, args.root)
    suites_dir = loaded.resolve(loaded.config.suites_dir)
    suites = discover_suites([suites_dir])  # bad suites fail here, in one line, before any server starts; the session reuses them
    out = Path(args.output) if args.output else loaded.resolve(loaded.config.output_dir)
    gates_dir = loaded.resolve(loaded.config.gates_dir)
    argv = [str(suites_dir)] + ([str(gates_dir)] if gates_dir.exists() else [])
    argv += ["--rootdir", str(loaded.root), "--junitxml", str(out / "junit.xml"), "-p", "no:cacheprovider", "-q",
             # the CLI imported mergegate before pytest could rewrite its asserts; that is expected
             "-W", "ignore::pytest.PytestAssertRewriteWarning"]
    if args.k:
        argv += ["-k", args.k]
    argv += list(args.pytest_args)
    options = RunOptions(config_path=str(loaded.path) if loaded.path else None, output_dir=str(out) if args.output else None,
                         command=tuple(sys.argv), shard=shard, sample=sample, merge_from=tuple(merge_from),
                         history=Path(args.history) if args.history else None, loaded=loaded, suites=tuple(suites))
    code = int(pytest.main(argv, plugins=[options]))
    report = out / "report.md"
    if report.exists():
        print(f"report: {report}")
    return exit_code_of_pytest(code)


def cmd_run(args: argparse.Namespace) -> int:
    """Serve both models, evaluate (one shard with --shard), run the gates; return the verdict's exit code."""
    from .evaluation import parse_shard

    shard = parse_shard(args.shard) if args.shard else None  # a malformed --shard is a one-line error before anything starts
    if args.sample is not None and args.sample < 1:
        raise InputError(f"--sample wants a positive number of cases, got {args.sample}")
    return _pytest_session(args, shard=shard, sample=args.sample)


def shard_files(paths: Sequence[str]) -> list[Path]:
    """Return the results.json files in ``paths`` (files, or folders searched recursively), sorted."""
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_file():
            found.append(p)
        elif p.is_dir():
            found += sorted(p.rglob("results.json"))
        else:
            raise InputError("no such file or folder", p)
    if not found:
        raise InputError(f"no results.json under {', '.join(paths)}")
    return found


def cmd_merge(args: argparse.Namespace) -> int:
    """Combine shard results into one results.json and report, run the gates; return the verdict's exit code."""
    from .evaluation import load_shards

    files = shard_files(args.paths)
    load_shards(files)  # shards that do not belong together are a one-line error, before pytest starts
    return _pytest_session(args, merge_from=files)


def cmd_comment(args: argparse.Namespace) -> int:
    """Post or update the PR's one mergegate comment from a results.json; return 0, or 3 if it was not posted."""
    from .github import GitHubClient, RetryPolicy, check_head_sha, upsert_comment
    from .github.api import DEFAULT_API_URL
    from .report import GITHUB_COMMENT_LIMIT, body_length, render_markdown
    from .results import RunResults, read_history

    path = Path(args.results)
    try:
        run = RunResults.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise InputError(f"cannot read results: {exc.strerror}", path) from None
    except ValueError as exc:
        raise InputError(f"not a mergegate results file: {str(exc).splitlines()[0]}", path) from None
    history = read_history(args.history, limit=20) if args.history and Path(args.history).exists() else None
    body = render_markdown(run, history=history, run_url=args.run_url, commit=args.expect_head_sha, limit=args.limit)
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
    from .results import RunResults, append_history

    path = Path(args.results)
    try:
        run = RunResults.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise InputError(f"cannot read results: {exc.strerror}", path) from None
    except ValueError as exc:
        raise InputError(f"not a mergegate results file: {str(exc).splitlines()[0]}", path) from None
    if run.verdict == "PENDING":
        raise InputError("a shard's results are not history: merge the shards first", path)
    entry = append_history(args.file, run)
    print(f"appended {entry.commit} to {args.file}" if entry else f"already recorded in {args.file}")
    return 0


def _read_results(path: Path):
    from .results import RunResults

    try:
        return RunResults.model_validate_json(Path(path).read_bytes())
    except OSError as exc:
        raise InputError(f"cannot read results: {exc.strerror}", path) from None
    except ValueError as exc:
        raise InputError(f"not a mergegate results file: {str(exc).splitlines()[0]}", path) from None


def cmd_human(args: argparse.Namespace) -> int:
    """Export blind pairs for human raters, or import their completed ratings."""
    from .judge.human import append_calibration, export_pairs, import_ratings

    if args.action == "export":
        if not args.paths:
            raise InputError("mergegate human export RESULTS.json --out FOLDER")
        run = _read_results(Path(args.paths[0]))
        paths = export_pairs(run, Path(args.out), seed=args.seed, suites=args.suite or None,
                             criteria=args.criteria.split(",") if args.criteria else None, limit=args.limit)
        print(f"wrote {paths['csv']} and {paths['jsonl']} for raters (one copy each, fill in 'preference': 1, 2 or tie)")
        print(f"wrote {paths['mapping']}: keep it from the raters; `mergegate human import` needs it")
        return 0
    if not args.paths:
        raise InputError("mergegate human import RATED.csv [RATED2.csv ...] --mapping mapping.json")
    mapping = Path(args.mapping) if args.mapping else Path(args.paths[0]).parent / "mapping.json"
    summary, calibration = import_ratings([Path(p) for p in args.paths], mapping, max_disagreement=args.max_disagreement)
    pct = lambda v: "-" if v is None else f"{v * 100:.1f}%"
    print(f"{summary.ratings} rating(s) of {summary.items} item(s) by {len(summary.raters)} rater(s): "
          f"candidate {summary.candidate}, baseline {summary.baseline}, tie {summary.tie}")
    print(f"candidate preferred in {pct(summary.preference_rate)} of decided ratings (95% Wilson CI {pct(summary.ci_low)}-{pct(summary.ci_high)}); "
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


def cmd_stop(args: argparse.Namespace) -> int:
    """Stop model servers a run left behind (their pid files are in OUTPUT/logs)."""
    from .config import load_config
    from .serving import stop_leftovers

    loaded = load_config(args.config, args.root)
    out = Path(args.output) if args.output else loaded.resolve(loaded.config.output_dir)
    stopped = stop_leftovers(out / "logs")
    print(f"stopped {len(stopped)} server(s)" + (f": {', '.join(map(str, stopped))}" if stopped else ""))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Start the configured servers and keep them up until Ctrl-C."""
    from .config import load_config
    from .serving import ServerFleet

    loaded = load_config(args.config, args.root)
    log_dir = loaded.resolve(loaded.config.output_dir) / "logs"
    with ServerFleet(loaded, log_dir) as endpoints:
        for role, ep in endpoints.items():
            print(f"{role}: {ep.base_url} model={ep.model}", flush=True)
        print("serving; Ctrl-C to stop", flush=True)
        while True:
            for ep in endpoints.values():
                ep.raise_if_dead()
            time.sleep(1)


def cmd_validate(args: argparse.Namespace) -> int:
    """Validate mergegate.yaml and the suites; print a one-line summary."""
    from .config import load_config
    from .suites import discover_suites

    loaded = load_config(args.config, args.root)
    paths = args.paths or [loaded.resolve(loaded.config.suites_dir)]
    suites = discover_suites(paths)
    n = sum(len(s.suite.cases) for s in suites)
    from .judge import find_calibration_files, load_calibration

    cals = [load_calibration(f) for p in paths if Path(p).is_dir() for f in find_calibration_files(Path(p))]
    extra = f", {len(cals)} calibration set(s)" if cals else ""
    print(f"ok: {len(suites)} suite(s), {n} case(s){extra}")
    return 0


def cmd_contamination(args: argparse.Namespace) -> int:
    """Print, per suite, the cases whose text (input or reference) shares an n-gram with the training files; exit 0."""
    from .suites import discover_suites
    from .config import load_config
    from .contamination import case_texts, find_overlaps, iter_training_texts, resolve_training_files, summary_of

    loaded = load_config(args.config, args.root)
    suites = discover_suites(args.suites or [loaded.resolve(loaded.config.suites_dir)])
    opts = loaded.config.contamination
    ns = args.n or opts.n
    if any(n < 1 for n in ns):
        raise InputError("--n: n-gram sizes must be at least 1")
    files = resolve_training_files(args.train, Path.cwd())
    report = find_overlaps([case_texts(ls.name, c) for ls in suites for c in ls.suite.cases],
                           iter_training_texts(files, args.field or opts.fields or None), ns, opts.min_words)
    summary = summary_of(report, opts.on_contaminated, Path.cwd())
    print(f"read {report.records:,} training record(s) from {len(files)} file(s) in {report.seconds:.1f} s; "
          f"n-gram sizes {', '.join(map(str, report.ns))} (a case counts at n={min(report.ns)})")
    width = max([len(s) for s in summary["per_suite"]] + [5])
    for suite, (bad, total) in sorted(summary["per_suite"].items()):
        print(f"  {suite:<{width}}  {bad:>4} / {total:<4} contaminated ({bad / total:.0%})" if total else f"  {suite:<{width}}  no case")
    for c in summary["cases"]:
        print(f"  CONTAMINATED {c['suite']}::{c['id']}  {c['matched_ngrams']}/{c['ngrams']} n-gram(s), first in {c['first_match']}")
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def cmd_split(args: argparse.Namespace) -> int:
    """Split a JSONL file into train/val/test (or the given splits) by a stable hash of one field; print the counts."""
    from .contamination import split_file

    fractions = []
    for item in args.ratios:
        name, _, value = item.partition("=")
        try:
            frac = float(value)
        except ValueError:
            raise InputError(f"--ratios wants NAME=FRACTION such as train=0.8, got {item!r}") from None
        if not name or frac <= 0:
            raise InputError(f"--ratios: {item!r} needs a name and a positive fraction")
        fractions.append((name, frac))
    src = Path(args.input)
    if not src.is_file():
        raise InputError(f"{src} does not exist")
    try:
        counts = split_file(src, Path(args.out), args.key, fractions, args.salt)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    total = sum(counts.values())
    print(", ".join(f"{name}: {n} ({n / total:.1%})" if total else f"{name}: 0" for name, n in counts.items())
          + f"  -> {args.out}/")
    return 0


def schemas() -> dict[str, dict]:
    """Return the JSON Schemas generated from the pydantic models, by file name."""
    from .config import Config
    from .judge import CalibrationSet
    from .results import RunResults
    from .suites import Suite

    return {"suite.schema.json": Suite.model_json_schema(by_alias=True),
            "config.schema.json": Config.model_json_schema(by_alias=True),
            "calibration.schema.json": CalibrationSet.model_json_schema(by_alias=True),
            "results.schema.json": RunResults.model_json_schema(by_alias=True, mode="serialization")}


def cmd_schema(args: argparse.Namespace) -> int:
    """Write (or with --check, compare) the committed JSON Schemas."""
    out = Path(args.dir)
    stale = []
    for name, schema in schemas().items():
        text = json.dumps(schema, indent=2, sort_keys=True) + "\n"
        path = out / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            out.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print(f"mergegate: error: out of date: {', '.join(stale)} (run 'mergegate schema')", file=sys.stderr)
        return 1
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser."""
    p = argparse.ArgumentParser(prog="mergegate", description="Evaluate a candidate checkpoint against a baseline and gate the merge.")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--config", default=os.environ.get("MERGEGATE_CONFIG") or None,
                        help="mergegate.yaml (default: $MERGEGATE_CONFIG, else ROOT/mergegate.yaml, else the embedded CPU default)")
        sp.add_argument("--root", default=None, help="project folder (default: current folder)")

    run = sub.add_parser("run", help="serve both models, run suites and gates, write results/ (exit 0 GO, 1 NO-GO, 2 INCOMPLETE)")
    common(run)
    run.add_argument("--output", default=None, help="output folder (default: the config's output_dir)")
    run.add_argument("-k", default=None, help="pytest -k expression to select suites or cases")
    run.add_argument("--shard", default=None, metavar="I/N", help="evaluate shard I of N only (1-based); combine with mergegate merge")
    run.add_argument("--history", default=None, metavar="JSONL", help="main-line history file, for the report's trend")
    run.add_argument("--sample", type=int, default=None, metavar="N",
                     help="a seeded, category-stratified sample of N cases (cheap PR runs; intervals account for it)")
    run.add_argument("pytest_args", nargs="*", help="further pytest arguments (after --)")
    run.set_defaults(fn=cmd_run)

    merge = sub.add_parser("merge", help="combine shard results (folders or results.json files) into one result and verdict")
    common(merge)
    merge.add_argument("paths", nargs="+", help="shard results: results.json files or folders holding them")
    merge.add_argument("--output", default=None, help="output folder (default: the config's output_dir)")
    merge.add_argument("-k", default=None, help="the -k the shards ran with, if any")
    merge.add_argument("--history", default=None, metavar="JSONL", help="main-line history file, for the report's trend")
    merge.set_defaults(fn=cmd_merge, pytest_args=[])

    com = sub.add_parser("comment", help="post or update the pull request's mergegate comment (GITHUB_TOKEN, GITHUB_API_URL)")
    com.add_argument("--results", default="results/results.json")
    com.add_argument("--pr", type=int, default=None, help="pull request number (default: from the results' CI context)")
    com.add_argument("--repo", default=None, help="OWNER/NAME (default: GITHUB_REPOSITORY)")
    com.add_argument("--expect-head-sha", default=None, help="refuse unless the PR's head commit is this (comment jobs reading artifacts)")
    com.add_argument("--run-url", default=None, help="link to the workflow run that evaluated")
    com.add_argument("--history", default=None, metavar="JSONL")
    com.add_argument("--limit", type=int, default=65536, help="maximum body length (GitHub's limit)")
    com.add_argument("--dry-run", default=None, metavar="FILE", help="write the body to FILE instead of posting")
    com.add_argument("--attempts", type=int, default=5)
    com.add_argument("--backoff", type=float, default=2.0, help="first wait after a 5xx, doubling")
    com.add_argument("--secondary-wait", type=float, default=60.0, help="wait after a rate limit without Retry-After, doubling")
    com.add_argument("--max-wait", type=float, default=300.0, help="cap on any single wait")
    com.set_defaults(fn=cmd_comment)

    hist = sub.add_parser("history", help="append a run's headline metrics to the main line's history (JSONL)")
    hist.add_argument("action", choices=["append"])
    hist.add_argument("results", help="results.json of a full or merged run")
    hist.add_argument("--file", default="history.jsonl")
    hist.set_defaults(fn=cmd_history)

    hum = sub.add_parser("human", help="export blind pairs for human raters; import their ratings (preference, kappa, calibration)")
    hum.add_argument("action", choices=["export", "import"])
    hum.add_argument("paths", nargs="*", help="export: results.json; import: completed rating files (CSV or JSONL, one per rater)")
    hum.add_argument("--out", default="human-eval", help="export: folder for pairs.csv, pairs.jsonl, mapping.json")
    hum.add_argument("--seed", type=int, default=0, help="export: seed of the per-item order and the sample")
    hum.add_argument("--suite", action="append", help="export: only this suite (repeatable)")
    hum.add_argument("--criteria", default=None, help="export: rubric columns, comma-separated (default: the run's llm_rubric criteria)")
    hum.add_argument("--limit", type=int, default=None, help="export: a seeded sample of this many items")
    hum.add_argument("--mapping", default=None, help="import: mapping.json (default: next to the first rating file)")
    hum.add_argument("--max-disagreement", type=float, default=0.34, help="import: flag items where more raters than this share leave the majority")
    hum.add_argument("--output", default=None, help="import: write the summary as JSON here")
    hum.add_argument("--append-calibration", default=None, metavar="FILE", help="import: append rated items to this *.calibration.yaml")
    hum.set_defaults(fn=cmd_human)

    stop = sub.add_parser("stop", help="stop model servers a run left behind (CI cleanup)")
    common(stop)
    stop.add_argument("--output", default=None)
    stop.set_defaults(fn=cmd_stop)

    serve = sub.add_parser("serve", help="start the configured model servers until Ctrl-C")
    common(serve)
    serve.set_defaults(fn=cmd_serve)

    val = sub.add_parser("validate", help="check mergegate.yaml and suite files")
    common(val)
    val.add_argument("paths", nargs="*", help="suite files or folders (default: the suites folder)")
    val.set_defaults(fn=cmd_validate)

    con = sub.add_parser("contamination", help="find eval cases whose text appears in training data (word n-gram overlap)")
    common(con)
    con.add_argument("--train", nargs="+", required=True, metavar="PATH", help="training files (JSONL or text; globs allowed)")
    con.add_argument("--n", nargs="+", type=int, default=None, help="n-gram sizes (default: the config's contamination.n, 13)")
    con.add_argument("--field", nargs="+", default=None, help="JSONL fields to read (default: every string value)")
    con.add_argument("--json", default=None, metavar="FILE", help="also write the findings as JSON")
    con.add_argument("--suites", nargs="+", default=None, help="suite files or folders (default: the config's suites_dir)")
    con.set_defaults(fn=cmd_contamination)

    spl = sub.add_parser("split", help="assign each JSONL example to train/val/test by a stable hash of one field")
    spl.add_argument("input", help="JSONL file")
    spl.add_argument("--key", required=True, help="field whose value decides the split (e.g. id, or prompt to keep duplicates together)")
    spl.add_argument("--out", required=True, help="folder for <split>.jsonl")
    spl.add_argument("--ratios", nargs="+", default=["train=0.8", "val=0.1", "test=0.1"], metavar="NAME=FRACTION")
    spl.add_argument("--salt", default="", help="change it to draw a different (still stable) split")
    spl.set_defaults(fn=cmd_split)

    sch = sub.add_parser("schema", help="write the JSON Schemas of suites, config and results")
    sch.add_argument("--dir", default="schema")
    sch.add_argument("--check", action="store_true", help="fail if the committed schemas are out of date")
    sch.set_defaults(fn=cmd_schema)
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the CLI; return the exit code."""
    args = build_parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    try:
        return args.fn(args)
    except MergegateError as exc:
        print(f"mergegate: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("mergegate: interrupted; servers stopped; verdict INCOMPLETE", file=sys.stderr)
        return 2
    finally:
        signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
