"""The ``mergegate`` command: run, serve, validate, schema.

User mistakes end with one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from .config import load_config
from .errors import MergegateError
from .suites import discover_suites

__all__ = ["main"]


def _sigterm_as_interrupt(signum: int, frame: object) -> None:
    # CI cancels with SIGTERM; turning it into KeyboardInterrupt runs every cleanup (servers stop).
    raise KeyboardInterrupt


def cmd_run(args: argparse.Namespace) -> int:
    """Validate inputs, then run the pytest session over suites and gates; return the verdict's exit code."""
    import pytest

    loaded = load_config(args.config, args.root)
    suites_dir = loaded.resolve(loaded.config.suites_dir)
    discover_suites([suites_dir])  # bad suites fail here, in one line, before any server starts
    out = Path(args.output) if args.output else loaded.resolve(loaded.config.output_dir)
    gates_dir = loaded.resolve(loaded.config.gates_dir)
    argv = [str(suites_dir)] + ([str(gates_dir)] if gates_dir.exists() else [])
    argv += ["--rootdir", str(loaded.root), "--junitxml", str(out / "junit.xml"), "-p", "no:cacheprovider", "-q",
             # the CLI imported mergegate before pytest could rewrite its asserts; that is expected
             "-W", "ignore::pytest.PytestAssertRewriteWarning"]
    if loaded.path is not None:
        argv += ["--mergegate-config", str(loaded.path)]
    if args.output:
        argv += ["--mergegate-output", str(out)]
    if args.k:
        argv += ["-k", args.k]
    argv += list(args.pytest_args)
    code = int(pytest.main(argv))
    report = out / "report.md"
    if report.exists():
        print(f"report: {report}")
    # pytest's own usage errors (4) and internal errors (3) are "could not complete" for a gate.
    return code if code in (0, 1, 2) else 2


def cmd_serve(args: argparse.Namespace) -> int:
    """Start the configured servers and keep them up until Ctrl-C."""
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
    loaded = load_config(args.config, args.root)
    paths = args.paths or [loaded.resolve(loaded.config.suites_dir)]
    suites = discover_suites(paths)
    n = sum(len(s.suite.cases) for s in suites)
    print(f"ok: {len(suites)} suite(s), {n} case(s)")
    return 0


def schemas() -> dict[str, dict]:
    """Return the JSON Schemas generated from the pydantic models, by file name."""
    from .config import Config
    from .results import RunResults
    from .suites import Suite

    return {"suite.schema.json": Suite.model_json_schema(by_alias=True),
            "config.schema.json": Config.model_json_schema(by_alias=True),
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
        sp.add_argument("--config", default=None, help="mergegate.yaml (default: ROOT/mergegate.yaml, else the embedded CPU default)")
        sp.add_argument("--root", default=None, help="project folder (default: current folder)")

    run = sub.add_parser("run", help="serve both models, run suites and gates, write results/ (exit 0 GO, 1 NO-GO, 2 INCOMPLETE)")
    common(run)
    run.add_argument("--output", default=None, help="output folder (default: the config's output_dir)")
    run.add_argument("-k", default=None, help="pytest -k expression to select suites or cases")
    run.add_argument("pytest_args", nargs="*", help="further pytest arguments (after --)")
    run.set_defaults(fn=cmd_run)

    serve = sub.add_parser("serve", help="start the configured model servers until Ctrl-C")
    common(serve)
    serve.set_defaults(fn=cmd_serve)

    val = sub.add_parser("validate", help="check mergegate.yaml and suite files")
    common(val)
    val.add_argument("paths", nargs="*", help="suite files or folders (default: the suites folder)")
    val.set_defaults(fn=cmd_validate)

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
