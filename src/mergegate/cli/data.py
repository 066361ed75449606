"""`mergegate contamination`, `split`, `schema`: eval data and file formats."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError

if TYPE_CHECKING:
    pass


def cmd_contamination(args: argparse.Namespace) -> int:
    """Print, per suite, the cases whose text (input or reference) shares an n-gram with the training files; exit 0."""
    from ..config import load_config
    from ..contamination import case_texts, find_overlaps, iter_training_texts, resolve_training_files, summary_of
    from ..suites import discover_suites

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
    from ..contamination import split_file

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
    from ..config import Config
    from ..judge import CalibrationSet
    from ..results import RunResults
    from ..suites import Suite

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


# What `mergegate init` writes: (package file, project path). The gates are the project's own default gates.
_SCAFFOLD = (("mergegate.yaml", "mergegate.yaml"), ("example.yaml", "eval_suites/example.yaml"),
             ("go_no_go.py.txt", "gates/test_go_no_go.py"))


def _workflow_files(root: Path, install: str | None) -> tuple[list[tuple[str, str, bool]], str, str]:
    """Return the adapted workflows and helper scripts as (project path, text, executable), a note on the install, next steps."""
    from importlib.resources import files

    from ..scaffold.workflows import FILES, adapt_script, adapt_workflow, default_branch, default_install_spec, requirement

    note = ""
    if install is None:
        install, known = default_install_spec()
        if not known:
            note = (f"the workflows install {install}: edit their pip install lines, or give init --install SPEC "
                    "(e.g. 'mergegate @ git+https://github.com/ORG/mergegate@TAG')\n")
    try:
        requirement(install)
    except ValueError as exc:
        raise InputError(f"--install: {exc}") from None
    config = "mergegate.gpu.yaml" if (root / "mergegate.gpu.yaml").exists() else "mergegate.yaml"
    branch = default_branch(root)
    scaffold = files("mergegate") / "scaffold"
    out = []
    for name, rel, executable in FILES:
        text = (scaffold / name).read_text()
        text = adapt_workflow(text, install, config, branch) if rel.endswith(".yml") else adapt_script(text)
        out.append((rel, text, executable))
    nxt = (f"      git push: the workflows evaluate pull requests with {config} on a GPU runner (labels: variable MERGEGATE_GPU_RUNNER);\n"
           f"      make \"eval-gate / gate\" a required status check of {branch} (branch protection)")
    return out, note, nxt


def cmd_init(args: argparse.Namespace) -> int:
    """Write a starting project into ROOT: config, an example suite, the default gates, the GitHub workflows, .gitignore entries."""
    from importlib.resources import files

    root = Path(args.root or Path.cwd())
    scaffold = files("mergegate") / "scaffold"
    writes = [(rel, (scaffold / name).read_text(), False) for name, rel in _SCAFFOLD]
    note = github = ""
    if not args.no_workflows:
        workflows, note, github = _workflow_files(root, args.install)
        writes += workflows
    taken = [rel for rel, _, _ in writes if (root / rel).exists()]
    if taken and not args.force:
        raise InputError(f"already exists: {', '.join(taken)} (--force overwrites)", root / taken[0])
    for rel, text, executable in writes:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
        if executable:
            (root / rel).chmod((root / rel).stat().st_mode | 0o111)
    for name, schema in schemas().items():  # what the editor completes suites and the config against
        (root / "schema").mkdir(exist_ok=True)
        (root / "schema" / name).write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
    ignore = root / ".gitignore"
    have = ignore.read_text().splitlines() if ignore.exists() else []
    missing = [line for line in (scaffold / "gitignore").read_text().splitlines() if line not in have]
    if missing:
        ignore.write_text("".join(f"{line}\n" for line in have + missing))
    print(f"wrote {', '.join(rel for rel, _, _ in writes)}, schema/ and .gitignore entries in {root}\n{note}"
          "next: mergegate validate            (checks the config and suites)\n"
          "      mergegate run --limit 2       (a smoke run: 2 cases per suite; never GO)\n"
          "      mergegate run                 (the full evaluation: GO, NO-GO or INCOMPLETE)\n"
          "      mergegate view                (the report in your browser)" + (f"\n{github}" if github else ""))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Write a suite from a CSV or JSONL file, checked by the suite loader before it is written; exit 0."""
    import os
    import tempfile

    from ..suites import load_suite
    from ..suites.importer import dump, suite_from_records

    source = Path(args.file)
    name = args.name or source.stem
    doc = suite_from_records(source, name, args.prompt, args.reference, args.check or ["contains" if args.reference else "token_f1"],
                             args.role, args.id, args.category)
    out = Path(args.out)
    target = out / f"{name}.yaml" if out.is_dir() or not out.suffix else out
    if target.exists() and not args.force:
        raise InputError("already exists (--force overwrites)", target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(suffix=".yaml", dir=target.parent)
    with os.fdopen(fd, "w") as fh:
        fh.write(dump(doc))
    try:
        load_suite(tmp, run_user_code=False)  # what the import wrote is a valid suite, or nothing is written
    except BaseException:
        Path(tmp).unlink()
        raise
    Path(tmp).replace(target)
    print(f"wrote {target}: {len(doc['cases'])} case(s), checks {', '.join(c['type'] for c in doc['cases'][0]['checks'])}")
    return 0
