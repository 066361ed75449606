"""`mergegate run`, `merge`, `serve`, `stop`, `validate`: evaluating, and the servers and files it needs."""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Optional

from ..errors import InputError

if TYPE_CHECKING:
    from ..results import ShardMeta
    from ..verdict import Verdict


def _pytest_session(args: argparse.Namespace, shard: Optional[ShardMeta] = None, sample: Optional[int] = None,
                    merge_from: Sequence[Path] = (), aa: bool = False) -> int:
    """Validate inputs, then run the pytest session over suites and gates; return the verdict's exit code."""
    import pytest

    from ..config import load_config
    from ..session import RunOptions
    from ..suites import discover_suites
    from ..verdict import exit_code_of_pytest
    from .supervise import supervised

    loaded = load_config(args.config, args.root)
    if args.no_cache:  # the run reads and writes no cache; the file on disk is left as it is
        loaded = dataclasses.replace(loaded, config=loaded.config.model_copy(
            update={"cache": loaded.config.cache.model_copy(update={"enabled": False})}))
    suites_dir = loaded.resolve(loaded.config.suites_dir)
    suites = discover_suites([suites_dir])  # bad suites fail here, in one line, before any server starts; the session reuses them
    if loaded.config.cache.enabled:  # so does an unusable cache file, or one that came with the pull request
        from ..client.cache import ResponseCache, committed

        cache_path = loaded.resolve(loaded.config.cache.path)
        if cache_path.exists() and committed(cache_path):
            raise InputError("the response cache is committed to the repository, so a pull request could forge its answers; "
                             "remove it from git (git rm --cached) and list it in .gitignore", cache_path)
        ResponseCache(cache_path).close()
    out = Path(args.output) if args.output else loaded.resolve(loaded.config.output_dir)
    gates_dir = loaded.resolve(loaded.config.gates_dir)
    argv = [str(suites_dir)] + ([str(gates_dir)] if gates_dir.exists() else [])
    # Only mergegate's plugin: the verdict must not depend on which other pytest plugins happen to be installed
    # (a gate that needs one names it in its conftest.py's `pytest_plugins`, or passes `-p NAME` after `--`).
    # no:unraisableexception: its garbage collections at exit cost ~1 s at 10,000 cases, to warn about nothing a gate decides.
    argv += ["--rootdir", str(loaded.root), "--junitxml", str(out / "junit.xml"), "--disable-plugin-autoload",
             "-p", "mergegate.pytest_plugin", "-p", "no:cacheprovider", "-p", "no:unraisableexception", "-q",
             # the CLI imported mergegate before pytest could rewrite its asserts; that is expected
             "-W", "ignore::pytest.PytestAssertRewriteWarning",
             # a failed gate's full traceback repeats its finding three times; the verdict lines at the end say it once
             # (arguments after `--` come later and win: `mergegate run -- --tb=long`)
             "--tb=short"]
    if args.k:
        argv += ["-k", args.k]
    argv += list(args.pytest_args)
    options = RunOptions(config_path=str(loaded.path) if loaded.path else None, output_dir=str(out) if args.output else None,
                         command=tuple(sys.argv), shard=shard, sample=sample, merge_from=tuple(merge_from), aa=aa,
                         history=Path(args.history) if args.history else None, loaded=loaded, suites=tuple(suites),
                         limit=args.limit, no_judge=args.no_judge, no_benchmarks=args.no_benchmarks)

    def session(on_evaluated: Callable[[Verdict, int, bool], None]) -> int:
        run_options = dataclasses.replace(options, on_evaluated=on_evaluated)
        return exit_code_of_pytest(int(pytest.main(argv, plugins=[run_options])))

    # The session runs in a child process; the verdict is read from the results it wrote (cli/supervise.py).
    code = supervised(session, loaded, out, shard)
    _print_verdict(out)
    return code


def _print_verdict(out: Path) -> None:
    """Print the verdict and its reasons last, after pytest's summary (which lists every failed case)."""
    from ..report.terminal import verdict_lines
    from ..results import RunResults

    try:
        run = RunResults.model_validate_json((out / "results.json").read_bytes())
    except (OSError, ValueError):  # the supervisor already said why there are no results
        return
    sys.stdout.flush()
    print("\n" + "\n".join(verdict_lines(run, out)), flush=True)


def cmd_run(args: argparse.Namespace) -> int:
    """Serve both models, evaluate (one shard with --shard), run the gates; return the verdict's exit code."""
    from ..evaluation import parse_shard

    shard = parse_shard(args.shard) if args.shard else None  # a malformed --shard is a one-line error before anything starts
    if args.sample is not None and args.sample < 1:
        raise InputError(f"--sample wants a positive number of cases, got {args.sample}")
    if args.limit is not None and args.limit < 1:
        raise InputError(f"--limit wants a positive number of cases per suite, got {args.limit}")
    return _pytest_session(args, shard=shard, sample=args.sample, aa=args.aa)


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
    from ..evaluation import load_shards

    files = shard_files(args.paths)
    load_shards(files)  # shards that do not belong together are a one-line error, before pytest starts
    return _pytest_session(args, merge_from=files)


def cmd_stop(args: argparse.Namespace) -> int:
    """Stop model servers a run left behind (their pid files are in OUTPUT/logs)."""
    from ..config import load_config
    from ..serving import stop_leftovers

    loaded = load_config(args.config, args.root)
    out = Path(args.output) if args.output else loaded.resolve(loaded.config.output_dir)
    stopped = stop_leftovers(out / "logs")
    print(f"stopped {len(stopped)} server(s)" + (f": {', '.join(map(str, stopped))}" if stopped else ""))
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    """Download the Hub models and adapters the config serves with vLLM (a workflow step before any server starts)."""
    from ..config import load_config
    from ..serving.engines import download_models

    loaded = load_config(args.config, args.root)
    specs = dict(loaded.config.serving_roles())
    if loaded.config.benchmarks is not None:
        specs.update({f"ref:{k}": v for k, v in loaded.config.benchmarks.references.items()})
    for what, path in download_models(specs, loaded.root).items():
        print(f"{what}: {path}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Start the configured servers and keep them up until Ctrl-C."""
    from ..config import load_config
    from ..serving import ServerFleet

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
    """Validate mergegate.yaml and the suites, running none of the project's code; print a one-line summary."""
    import functools

    from ..checks.plugins import read_user_checks
    from ..checks.static import stand_ins
    from ..config import load_config
    from ..suites import discover_suites, load_suite

    loaded = load_config(args.config, args.root, run_user_code=False)
    paths = args.paths or [loaded.resolve(loaded.config.suites_dir)]
    from ..evaluation.judging import check_judge_configured
    from ..evaluation.requests import check_tools_reach_the_models
    from ..judge import find_calibration_files, load_calibration

    with stand_ins(read_user_checks(loaded)):  # a pull request is validated before anyone trusts its code
        suites = discover_suites(paths, load=functools.partial(load_suite, run_user_code=False))
        every = [(ls, case) for ls in suites for case in ls.suite.cases]
        check_judge_configured(loaded, every)  # what a run would refuse before starting a server, said now
        check_tools_reach_the_models(loaded, every)
    n = len(every)

    cals = [load_calibration(f) for p in paths if Path(p).is_dir() for f in find_calibration_files(Path(p))]
    extra = f", {len(cals)} calibration set(s)" if cals else ""
    print(f"ok: {len(suites)} suite(s), {n} case(s){extra}")
    return 0
