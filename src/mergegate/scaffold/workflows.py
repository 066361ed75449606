"""The GitHub workflows `mergegate init` writes into another repository, adapted from this repository's own.

The package ships byte-identical copies of .github/workflows/eval-gate.yml, eval-gate-comment.yml and the two
helper scripts (tests/test_scaffold_workflows.py keeps them equal). What only makes sense here is replaced at
write time, each replacement raising :class:`WorkflowDrift` when its source text is gone, so a change of the
repository's workflow that the adaptation does not know about fails the tests instead of writing a broken file:

- ``python -m pip install -e .`` and ``-e '.[EXTRA]'`` install mergegate from a requirement (``--install``);
- ``scripts/last_evaluation.py`` and ``scripts/history-push.sh`` become the copies under ``.github/mergegate/``;
- ``MERGEGATE_CONFIG: mergegate.gpu.yaml`` becomes ``mergegate.yaml`` (kept when the project has a mergegate.gpu.yaml);
- ``on.push.branches: [main]`` names the project's default branch.

The evaluated paths (the push ``paths:`` filter and EVALUATED_PATHS) are kept as they are, ``adapters/**`` included:
a path that does not exist matches nothing, and evaluating more than needed is the safe side of the gate.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Union

# (package file, project path, executable): what `mergegate init` writes besides the config, suites and gates
HELPERS = ".github/mergegate"
FILES = (("eval-gate.yml.txt", ".github/workflows/eval-gate.yml", False),
         ("eval-gate-comment.yml.txt", ".github/workflows/eval-gate-comment.yml", False),
         ("last_evaluation.py.txt", f"{HELPERS}/last_evaluation.py", False),
         ("history-push.sh.txt", f"{HELPERS}/history-push.sh", True))
# the repository's own files the shipped copies are (tests/test_scaffold_workflows.py)
SOURCES = {"eval-gate.yml.txt": ".github/workflows/eval-gate.yml", "eval-gate-comment.yml.txt": ".github/workflows/eval-gate-comment.yml",
           "last_evaluation.py.txt": "scripts/last_evaluation.py", "history-push.sh.txt": "scripts/history-push.sh"}

# a requirement goes into a single-quoted `run:` line: no quote, `$`, backslash, braces or newline
_SAFE_SPEC = re.compile(r"[A-Za-z0-9 ._\-+\[\],@:/=<>!~%#&?*]+")
_SAFE_BRANCH = re.compile(r"[A-Za-z0-9._/-]+")
_INSTALL = re.compile(r"python -m pip install -e (?:\.(?=\s|$)|'\.\[([\w,-]+)\]')", re.MULTILINE)
_RUN_LAST = re.compile(r"\b(python3? )scripts/last_evaluation\.py ")
_RUN_PUSH = re.compile(r"\brun: \./scripts/history-push\.sh ")
_SCRIPT = re.compile(r"(?<![\w/.-])scripts/(last_evaluation\.py|history-push\.sh)")  # in comments
# an install of the checkout the adaptation did not replace: -e/--editable, or `.` / `.[extra]` as a requirement
_LOCAL_INSTALL = re.compile(r"pip install\b[^\n]*?(?:\s(?:-e|--editable)[\s=]|\s['\"]?\.(?:/|\[|['\"\s]|$))", re.MULTILINE)
_CONFIG_LINE = re.compile(r"^(\s+MERGEGATE_CONFIG: )mergegate\.gpu\.yaml$", re.MULTILINE)
_CONFIG_NOTE = re.compile(r"^#   - the checkpoints: MERGEGATE_CONFIG \(mergegate\.gpu\.yaml\);$", re.MULTILINE)
_BRANCHES = re.compile(r"^(  push:\n    branches: )\[main\]$", re.MULTILINE)
_MAIN_NOTE = re.compile(r"\bpushes to main\b")
_DOCS = re.compile(r"(?<![\w/.'-])docs/(?=\w+\.md)")


class WorkflowDrift(ValueError):
    """The repository's workflow changed so that an adaptation no longer applies."""


def _sub(text: str, pattern: re.Pattern[str], repl: Union[str, Callable[[re.Match[str]], str]], required: bool, what: str) -> str:
    new, n = pattern.subn(repl, text)
    if required and not n:
        raise WorkflowDrift(f"the workflow no longer has {what} ({pattern.pattern!r}): update mergegate/scaffold/workflows.py")
    return new


def requirement(spec: str, extras: frozenset[str] = frozenset()) -> str:
    """Return the pip requirement ``spec`` (it must name mergegate) with ``extras`` added; ValueError if it is not one."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    try:
        req = Requirement(spec)
    except InvalidRequirement as exc:
        raise ValueError(f"not a pip requirement: {spec!r} ({str(exc).splitlines()[0]})") from None
    if canonicalize_name(req.name) != "mergegate":
        raise ValueError(f"the requirement must name mergegate, e.g. 'mergegate @ git+https://github.com/ORG/mergegate@TAG': {spec!r}")
    req.extras |= set(extras)
    text = str(req)
    if not _SAFE_SPEC.fullmatch(text) or " #" in text or ": " in text:
        raise ValueError(f"the requirement may hold letters, digits, spaces and ._-+[],@:/=<>!~%#&?* only: {spec!r}")
    return text


def default_install_spec() -> tuple[str, bool]:
    """Return what the workflows install by default, and whether it names where this mergegate came from.

    A VCS install (PEP 610's direct_url.json) gives ``mergegate @ git+URL@COMMIT``; anything else (a release,
    an editable or local checkout) gives ``mergegate==VERSION``, which is only right if that version is on the index.
    """
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution("mergegate")
    except PackageNotFoundError:
        return "mergegate", False
    try:
        info = json.loads(dist.read_text("direct_url.json") or "{}")
    except ValueError:
        info = {}
    vcs, url = info.get("vcs_info") or {}, str(info.get("url", ""))
    if vcs.get("vcs") and vcs.get("commit_id") and not url.startswith("file:"):
        sub = info.get("subdirectory")
        spec = f"mergegate @ {vcs['vcs']}+{url}@{vcs['commit_id']}" + (f"#subdirectory={sub}" if sub else "")
        try:
            return requirement(spec), True
        except ValueError:
            pass  # e.g. a URL holding a credential placeholder: fall back to the version
    return f"mergegate=={dist.version}", False


def default_branch(root: Path) -> str:
    """Return the project's default branch: origin's HEAD; else the current branch if it is main or master or has no
    commit yet (a new repository's first branch); else main."""
    def git(*args: str) -> str:
        try:
            done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.SubprocessError):
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    origin = git("symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD")
    if origin.startswith("origin/") and _SAFE_BRANCH.fullmatch(origin[len("origin/"):]):
        return origin[len("origin/"):]
    current = git("symbolic-ref", "--quiet", "--short", "HEAD")
    unborn = current and not git("rev-parse", "--verify", "--quiet", "HEAD")
    return current if _SAFE_BRANCH.fullmatch(current) and (current in ("main", "master") or unborn) else "main"


def adapt_workflow(text: str, install: str, config: str = "mergegate.yaml", branch: str = "main") -> str:
    """Return the repository's workflow ``text`` made for another repository (see the module's docstring).

    ``install`` is the pip requirement of mergegate (``requirement()`` checks it); ``config`` is the file
    MERGEGATE_CONFIG names; ``branch`` the default branch pushes to which are evaluated (eval-gate.yml only).
    """
    if not _SAFE_BRANCH.fullmatch(branch):
        raise ValueError(f"not a branch name the workflow can hold: {branch!r}")
    if config not in ("mergegate.yaml", "mergegate.gpu.yaml"):
        raise ValueError(f"MERGEGATE_CONFIG is mergegate.yaml or mergegate.gpu.yaml, not {config!r}")
    requirement(install)  # fails before anything is written

    def install_line(m: re.Match[str]) -> str:
        extras = frozenset(e.strip() for e in (m.group(1) or "").split(",") if e.strip())
        return f"python -m pip install '{requirement(install, extras)}'"

    out = _sub(text, _INSTALL, install_line, True, "an install of mergegate from the checkout (pip install -e .)")
    gate = re.search(r"^name: eval-gate$", text, re.MULTILINE) is not None  # eval-gate-comment.yml: only the install
    out = _sub(out, _RUN_LAST, lambda m: f"{m.group(1)}{HELPERS}/last_evaluation.py ", gate, "python3 scripts/last_evaluation.py")
    out = _sub(out, _RUN_PUSH, f"run: bash {HELPERS}/history-push.sh ", gate, "run: ./scripts/history-push.sh")
    out = _sub(out, _SCRIPT, lambda m: f"{HELPERS}/{m.group(1)}", False, "")
    out = _sub(out, _CONFIG_NOTE, "#   - the checkpoints: MERGEGATE_CONFIG (CONFIG-NOTE);", gate, "the MERGEGATE_CONFIG note")
    out = _sub(out, _CONFIG_LINE, lambda m: m.group(1) + config, gate, "MERGEGATE_CONFIG: mergegate.gpu.yaml")
    out = out.replace("mergegate.gpu.yaml points", f"{config} points")
    out = _sub(out, _BRANCHES, lambda m: f"{m.group(1)}[{branch}]", gate, "on.push.branches: [main]")
    out = _sub(out, _MAIN_NOTE, f"pushes to {branch}", False, "")
    out = _sub(out, _DOCS, "mergegate's docs/", False, "")  # comments pointing into mergegate's documentation
    left = [s for s in ("scripts/",) if s in out] + [m.group(0) for m in _LOCAL_INSTALL.finditer(out)]
    if left or (config != "mergegate.gpu.yaml" and "mergegate.gpu.yaml" in out):
        raise WorkflowDrift(f"the adapted workflow still holds {left or ['mergegate.gpu.yaml']}: update mergegate/scaffold/workflows.py")
    return out.replace("(CONFIG-NOTE);", f"({config}; `mergegate init` writes mergegate.gpu.yaml\n"
                       "#     when the repository has one, else mergegate.yaml): its models must be ones the GPU runner can\n"
                       "#     serve (engine: vllm, or external);")


def adapt_script(text: str) -> str:
    """Return a helper script with the paths it names of itself moved under .github/mergegate/."""
    return _sub(text, _SCRIPT, lambda m: f"{HELPERS}/{m.group(1)}", False, "")
