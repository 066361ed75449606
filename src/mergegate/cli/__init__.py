"""The ``mergegate`` command: init, import, run, merge, view, compare, comment, history, human, contamination, split, download,
serve, stop, validate, schema.

User mistakes end with one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from typing import Optional

from ..errors import MergegateError
from .data import cmd_contamination, cmd_import, cmd_init, cmd_schema, cmd_split, schemas
from .evaluate import cmd_download, cmd_merge, cmd_run, cmd_serve, cmd_stop, cmd_validate
from .results import cmd_comment, cmd_history, cmd_human
from .view import add_view_commands

# Heavy modules (scorers, numpy, the OpenAI client) are imported inside the commands that need them:
# `mergegate --help` and `mergegate comment` start in well under a second.

__all__ = ["main", "build_parser", "schemas"]


def _sigterm_as_interrupt(signum: int, frame: object) -> None:
    # CI cancels with SIGTERM; turning it into KeyboardInterrupt runs every cleanup (servers stop).
    raise KeyboardInterrupt


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mergegate")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser."""
    p = argparse.ArgumentParser(prog="mergegate", description="Evaluate a candidate checkpoint against a baseline and gate the merge.")
    p.add_argument("--version", action="version", version=f"mergegate {_version()}")
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
    run.add_argument("--aa", action="store_true",
                     help="A/A run: serve the baseline's config on both sides; the answers that differ are the engine's noise floor")
    quick = run.add_argument_group("quick iterations (a partial run is never GO; the report says what it left out)")
    quick.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N cases of each suite (a smoke run)")
    quick.add_argument("--no-judge", action="store_true", help="leave out the cases with a judge check (llm_rubric, pairwise)")
    quick.add_argument("--no-benchmarks", action="store_true", help="do not run the lm-eval benchmarks")
    run.add_argument("--no-cache", action="store_true",
                     help="neither read nor write cached responses and benchmark results (a full, fresh evaluation)")
    run.add_argument("pytest_args", nargs="*", help="further pytest arguments (after --)")
    run.set_defaults(fn=cmd_run)

    merge = sub.add_parser("merge", help="combine shard results (folders or results.json files) into one result and verdict")
    common(merge)
    merge.add_argument("paths", nargs="+", help="shard results: results.json files or folders holding them")
    merge.add_argument("--output", default=None, help="output folder (default: the config's output_dir)")
    merge.add_argument("-k", default=None, help="the -k the shards ran with, if any")
    merge.add_argument("--history", default=None, metavar="JSONL", help="main-line history file, for the report's trend")
    merge.set_defaults(fn=cmd_merge, pytest_args=[], limit=None, no_judge=False, no_benchmarks=False, no_cache=False)

    com = sub.add_parser("comment", help="post or update the pull request's mergegate comment (GITHUB_TOKEN, GITHUB_API_URL)")
    com.add_argument("--results", default="results/results.json")
    com.add_argument("--pr", type=int, default=None, help="pull request number (default: from the results' CI context)")
    com.add_argument("--repo", default=None, help="OWNER/NAME (default: GITHUB_REPOSITORY)")
    com.add_argument("--expect-head-sha", default=None, help="refuse unless the PR's head commit is this (comment jobs reading artifacts)")
    com.add_argument("--run-url", default=None, help="link to the workflow run that evaluated")
    com.add_argument("--unverified", default=None, metavar="REASONS",
                     help="post the results marked unverified, saying why (what GitHub's record of the run contradicts)")
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
    hum.add_argument("--max-disagreement", type=float, default=0.34,
                     help="import: flag items where more raters than this share leave the majority")
    hum.add_argument("--output", default=None, help="import: write the summary as JSON here")
    hum.add_argument("--append-calibration", default=None, metavar="FILE", help="import: append rated items to this *.calibration.yaml")
    hum.set_defaults(fn=cmd_human)

    init = sub.add_parser("init", help="start a project here: mergegate.yaml, an example suite, the default gates, the GitHub workflows")
    init.add_argument("--root", default=None, help="project folder (default: current folder)")
    init.add_argument("--force", action="store_true", help="overwrite files that exist")
    init.add_argument("--install", default=None, metavar="SPEC",
                      help="the pip requirement the workflows install mergegate from, e.g. 'mergegate @ git+https://github.com/ORG/"
                           "mergegate@TAG' (default: where this mergegate came from, else mergegate==its version)")
    init.add_argument("--no-workflows", action="store_true",
                      help="do not write .github/workflows/eval-gate*.yml and their scripts (.github/mergegate/)")
    init.set_defaults(fn=cmd_init)

    imp = sub.add_parser("import", help="write a suite from a CSV or JSONL dataset (one case per row)")
    imp.add_argument("file", help="CSV (header row) or JSONL file")
    imp.add_argument("--prompt", required=True, metavar="FIELD", help="the field holding the prompt")
    imp.add_argument("--reference", default=None, metavar="FIELD", help="the field holding the expected answer")
    imp.add_argument("--check", action="append", default=None, metavar="TYPE",
                     help="a check on every case (repeatable): contains (the reference; a short or numeric one as a whole word), "
                          "equals, token_f1, rouge_l, bleu, chrf, similarity, bertscore (default: contains with --reference, "
                          "else token_f1)")
    imp.add_argument("--id", default=None, metavar="FIELD", help="the field holding case ids (default: NAME-1, NAME-2, ...)")
    imp.add_argument("--category", default=None, metavar="FIELD", help="the field holding categories")
    imp.add_argument("--name", default=None, help="suite name (default: the file's name)")
    imp.add_argument("--role", choices=["target", "general"], default="target")
    imp.add_argument("--out", default="eval_suites", help="a folder (NAME.yaml inside) or a .yaml path")
    imp.add_argument("--force", action="store_true", help="overwrite the suite file")
    imp.set_defaults(fn=cmd_import)

    stop = sub.add_parser("stop", help="stop model servers a run left behind (CI cleanup)")
    common(stop)
    stop.add_argument("--output", default=None)
    stop.set_defaults(fn=cmd_stop)

    download = sub.add_parser("download", help="download the Hub models and adapters vLLM will serve (before any server starts)")
    common(download)
    download.set_defaults(fn=cmd_download)

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

    add_view_commands(sub)  # view, compare

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
