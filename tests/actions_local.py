"""Runs the jobs of this repository's workflow files locally, the way a GitHub runner would.

Not a general Actions emulator: just enough for a rehearsal of the PR flow.
It evaluates the ``${{ }}`` expressions our workflows use (contexts, ``==``,
``!=``, ``&&``, ``||``, ``!``, ``fromJSON``, ``contains``, ``hashFiles``,
status functions, with GitHub's implicit ``success() &&`` on an ``if:`` that
calls none), passes job outputs along ``needs``, expands matrices, runs every
``run:`` step with bash exactly as written, and stands in for the few actions
we use (checkout, setup-python, cache, upload/download-artifact). An unknown
action or expression fails the rehearsal instead of being skipped. Jobs that
cannot run here (the GPU shards) can be stubbed: their ``if:`` is still
evaluated, only their steps are replaced by a given result.
"""

from __future__ import annotations

import fnmatch
import hashlib
import itertools
import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

# -- expressions ---------------------------------------------------------------------------

_TOKEN = re.compile(r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)?)|(?P<op>==|!=|&&|\|\||[!(),])|(?P<id>[A-Za-z_][\w.*-]*))")


class ExprError(Exception):
    """An expression this local runner does not understand (the rehearsal fails)."""


def _truthy(v: Any) -> bool:
    return v not in (None, False, 0, "") and v != 0


def _eq(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()  # GitHub compares strings case-insensitively
    return a == b


class _Parser:
    def __init__(self, text: str, ctx: dict[str, Any]):
        self.tokens, pos = [], 0
        text = text.strip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise ExprError(f"cannot parse {text!r} at {pos}")
            self.tokens.append((m.lastgroup, m.group(m.lastgroup)))
            pos = m.end()
        self.i, self.ctx = 0, ctx

    def peek(self) -> Optional[str]:
        return self.tokens[self.i][1] if self.i < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        self.i += 1
        return self.tokens[self.i - 1]

    def parse(self) -> Any:
        v = self.or_()
        if self.i != len(self.tokens):
            raise ExprError(f"trailing tokens: {self.tokens[self.i:]}")
        return v

    def or_(self) -> Any:
        v = self.and_()
        while self.peek() == "||":
            self.take()
            w = self.and_()
            v = v if _truthy(v) else w
        return v

    def and_(self) -> Any:
        v = self.not_()
        while self.peek() == "&&":
            self.take()
            w = self.not_()
            v = w if _truthy(v) else v
        return v

    def not_(self) -> Any:
        if self.peek() == "!":
            self.take()
            return not _truthy(self.not_())
        v = self.primary()
        if self.peek() in ("==", "!="):
            op = self.take()[1]
            w = self.primary()
            return _eq(v, w) if op == "==" else not _eq(v, w)
        return v

    def primary(self) -> Any:
        kind, tok = self.take()
        if tok == "(":
            v = self.or_()
            self.take()
            return v
        if kind == "str":
            return tok[1:-1].replace("''", "'")
        if kind == "num":
            return float(tok) if "." in tok else int(tok)
        if kind != "id":
            raise ExprError(f"unexpected {tok!r}")
        if tok in ("true", "false", "null"):
            return {"true": True, "false": False, "null": None}[tok]
        if self.peek() == "(":
            self.take()
            args = []
            while self.peek() != ")":
                args.append(self.or_())
                if self.peek() == ",":
                    self.take()
            self.take()
            return self.call(tok, args)
        value: Any = self.ctx
        for part in tok.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return value

    def call(self, name: str, args: list[Any]) -> Any:
        status = self.ctx.get("__status__", "success")
        if name == "always":
            return True
        if name == "success":
            return status == "success"
        if name == "failure":
            return status == "failure"
        if name == "cancelled":
            return False
        if name == "fromJSON":
            return json.loads(args[0])
        if name == "contains":
            hay, needle = args
            return any(_eq(x, needle) for x in hay) if isinstance(hay, list) else str(needle).lower() in str(hay).lower()
        if name == "hashFiles":
            root = Path(self.ctx["github"]["workspace"])
            h = hashlib.sha256()
            for pattern in args:
                for p in sorted(root.glob(pattern)):
                    if p.is_file():
                        h.update(p.read_bytes())
            return h.hexdigest()
        raise ExprError(f"function {name}() is not supported here")


_STATUS_CALL = re.compile(r"\b(?:success|failure|always|cancelled)\s*\(")


def condition(expr: Any) -> Any:
    """Return a job's or step's ``if:`` as GitHub evaluates it: without a status function it means ``success() && (...)``."""
    if expr is None:
        return "success()"
    if isinstance(expr, bool) or _STATUS_CALL.search(str(expr)):
        return expr
    text = str(expr).strip()
    if text.startswith("${{") and text.endswith("}}") and text.count("${{") == 1:
        text = text[3:-2]
    return f"success() && ({text})"


def evaluate(expr: Any, ctx: dict[str, Any]) -> Any:
    """Return the value of an ``if:`` (bare or wrapped in ``${{ }}``)."""
    if isinstance(expr, bool):
        return expr
    text = str(expr).strip()
    if text.startswith("${{") and text.endswith("}}") and text.count("${{") == 1:
        text = text[3:-2]
    return _Parser(text, ctx).parse()


def substitute(value: Any, ctx: dict[str, Any]) -> Any:
    """Return ``value`` with every ``${{ expr }}`` replaced by its value (as GitHub renders it)."""
    if not isinstance(value, str):
        return value

    def render(m: re.Match) -> str:
        v = _Parser(m.group(1), ctx).parse()
        return "" if v is None else ("true" if v is True else "false" if v is False else str(v))

    return re.sub(r"\$\{\{(.*?)\}\}", render, value)


# -- jobs ----------------------------------------------------------------------------------


@dataclass
class StepRun:
    """One executed (or skipped) step."""

    id: Optional[str]
    name: str
    outcome: str  # success | failure | skipped
    exit_code: Optional[int] = None
    output: str = ""
    outputs: dict[str, str] = field(default_factory=dict)  # what the step wrote to GITHUB_OUTPUT


@dataclass
class JobRun:
    """One leg of a job (one matrix combination)."""

    job: str
    matrix: dict[str, Any]
    result: str
    steps: list[StepRun] = field(default_factory=list)
    runs_on: Any = None
    summary: str = ""
    outputs: dict[str, str] = field(default_factory=dict)  # the job's `outputs:`, as `needs.<job>.outputs` sees them

    def step(self, step_id: str) -> StepRun:
        return next(s for s in self.steps if s.id == step_id)


@dataclass
class LocalRunner:
    """Runs workflow jobs; ``artifacts[run_id][name]`` is where uploads go."""

    origin: Path  # a bare git repository standing in for the GitHub remote
    work: Path  # scratch space for workspaces
    env: dict[str, str]  # the runner's environment (PATH, GITHUB_API_URL, ...)
    skip_steps: set[str] = field(default_factory=set)  # step ids not to run (e.g. installs done already)
    caches: dict[str, Path] = field(default_factory=dict)  # actions/cache: a cached path of the workspace → the runner's copy
    artifacts: dict[str, dict[str, Path]] = field(default_factory=dict)
    _n: itertools.count = field(default_factory=itertools.count)

    def run_workflow(self, workflow: Path, event_name: str, payload: dict, run_id: str, sha: str, ref: str,
                     repository: str = "acme/models", token: str = "", vars: Optional[dict] = None,
                     stubs: Optional[dict[str, str]] = None) -> dict[str, list[JobRun]]:
        """Run every job of ``workflow`` for one event, in ``needs`` order; return the legs per job.

        ``stubs`` maps a job to the result its legs report without running their steps (when its ``if:`` lets it run).
        """
        wf = yaml.safe_load(workflow.read_text())
        results: dict[str, list[JobRun]] = {}
        event_path = self.work / f"event-{run_id}.json"
        event_path.write_text(json.dumps(payload))
        github = {"event_name": event_name, "event": payload, "repository": repository, "run_id": run_id, "sha": sha, "ref": ref,
                  "token": token, "server_url": "https://github.com", "api_url": self.env.get("GITHUB_API_URL", "")}
        pending = list(wf["jobs"])
        while pending:
            name = next(j for j in pending if all(n in results for n in _list(wf["jobs"][j].get("needs"))))
            pending.remove(name)
            job = wf["jobs"][name]
            needs = {n: {"result": _combined(results[n]), "outputs": _outputs(results[n])} for n in _list(job.get("needs"))}
            ctx = {"github": github, "vars": vars or {}, "needs": needs, "env": dict(wf.get("env") or {}), "runner": {"os": "Linux"}}
            legs = _matrix(job)
            runs = []
            for index, matrix in enumerate(legs):
                leg_ctx = {**ctx, "matrix": matrix, "strategy": {"job-index": index, "job-total": len(legs)}}
                status_ok = all(n["result"] == "success" for n in needs.values())
                leg_ctx["__status__"] = "success" if status_ok else "failure"
                if not _truthy(evaluate(condition(job.get("if")), leg_ctx)):
                    runs.append(JobRun(name, matrix, "skipped"))
                    continue
                if stubs and name in stubs:
                    runs.append(JobRun(name, matrix, stubs[name]))
                    continue
                runs.append(self._run_job(wf, name, job, leg_ctx, event_path, run_id, sha, ref, repository))
            results[name] = runs
        return results

    def _run_job(self, wf: dict, name: str, job: dict, ctx: dict, event_path: Path, run_id: str, sha: str, ref: str,
                 repository: str) -> JobRun:
        ws = self.work / f"ws-{next(self._n)}-{name}"
        subprocess.run(["git", "clone", "-q", str(self.origin), str(ws)], check=True)
        subprocess.run(["git", "-C", str(ws), "checkout", "-q", sha], check=True)
        ctx["github"] = {**ctx["github"], "workspace": str(ws)}
        summary = ws.parent / f"{ws.name}-summary.md"
        summary.write_text("")
        base_env = {**self.env, "GITHUB_ACTIONS": "true", "CI": "true", "GITHUB_EVENT_NAME": ctx["github"]["event_name"],
                    "GITHUB_EVENT_PATH": str(event_path), "GITHUB_REPOSITORY": repository, "GITHUB_RUN_ID": run_id,
                    "GITHUB_RUN_ATTEMPT": "1", "GITHUB_SHA": sha, "GITHUB_REF": ref, "GITHUB_WORKSPACE": str(ws),
                    "GITHUB_SERVER_URL": "https://github.com", "GITHUB_STEP_SUMMARY": str(summary), "RUNNER_OS": "Linux"}
        env = {**base_env, **{k: str(substitute(v, ctx)) for k, v in (wf.get("env") or {}).items()}}
        env.update({k: str(substitute(v, ctx)) for k, v in (job.get("env") or {}).items()})
        run = JobRun(name, ctx["matrix"], "success",
                     runs_on=evaluate(job["runs-on"], ctx) if "${{" in str(job["runs-on"]) else job["runs-on"])
        steps_ctx: dict[str, Any] = {}
        ctx["steps"] = steps_ctx
        failed = False
        for i, step in enumerate(job["steps"]):
            sid = step.get("id")
            label = step.get("name") or step.get("uses") or step.get("run", "")[:40]
            ctx["__status__"] = "failure" if failed else "success"
            if sid in self.skip_steps or not _truthy(evaluate(condition(step.get("if")), ctx)):
                run.steps.append(StepRun(sid, label, "skipped"))
                if sid:
                    steps_ctx[sid] = {"outcome": "skipped", "conclusion": "skipped", "outputs": {}}
                continue
            step_env = {**env, **{k: str(substitute(v, ctx)) for k, v in (step.get("env") or {}).items()}}
            output_file = ws.parent / f"{ws.name}-out-{i}"
            output_file.write_text("")
            step_env["GITHUB_OUTPUT"] = str(output_file)
            if "run" in step:
                proc = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], cwd=ws, env=step_env,
                                      capture_output=True, text=True, timeout=900)
                code, out = proc.returncode, proc.stdout + proc.stderr
            else:
                code, out = self._action(step["uses"], {k: substitute(v, ctx) for k, v in (step.get("with") or {}).items()}, ws, run_id)
            outcome = "success" if code == 0 else "failure"
            outputs = dict(line.split("=", 1) for line in output_file.read_text().splitlines() if "=" in line)
            run.steps.append(StepRun(sid, label, outcome, code, out, outputs))
            if sid:
                conclusion = "success" if step.get("continue-on-error") else outcome
                steps_ctx[sid] = {"outcome": outcome, "conclusion": conclusion, "outputs": outputs}
            if outcome == "failure" and not step.get("continue-on-error"):
                failed = True
        run.result = "failure" if failed else "success"
        run.summary = summary.read_text()
        run.outputs = {k: str(substitute(v, ctx)) for k, v in (job.get("outputs") or {}).items()}
        return run

    def _action(self, uses: str, with_: dict[str, Any], ws: Path, run_id: str) -> tuple[int, str]:
        """Stand in for one action; return ``(exit_code, log)``."""
        action = uses.split("@")[0]
        if action == "actions/checkout":
            if "path" in with_:  # a second checkout of another ref, e.g. the history branch
                proc = subprocess.run(["git", "clone", "-q", "--depth", "1", "--branch", str(with_["ref"]), f"file://{self.origin}",
                                       str(ws / with_["path"])], capture_output=True, text=True)
                return proc.returncode, proc.stderr
            return 0, "workspace already checked out at the event's commit"
        if action == "actions/cache":  # restore: the runner's copy of each cached path appears in the workspace
            restored = []
            for rel in str(with_.get("path", "")).split():
                if rel in self.caches and not (ws / rel).exists():
                    (ws / rel).symlink_to(self.caches[rel], target_is_directory=True)
                    restored.append(rel)
            return 0, f"{action}: restored {', '.join(restored) or 'nothing'}"
        if action == "actions/setup-python":
            return 0, f"{action}: the runner's python is used as it is"
        if action == "actions/upload-artifact":
            src = ws / str(with_["path"])
            store = self.artifacts.setdefault(run_id, {})
            if not src.exists():
                return 0, "no files found"
            dest = self.work / "artifacts" / run_id / str(with_["name"])
            shutil.rmtree(dest, ignore_errors=True)
            if src.is_dir():
                shutil.copytree(src, dest)
            else:
                dest.mkdir(parents=True)
                shutil.copy(src, dest)
            store[str(with_["name"])] = dest
            return 0, f"uploaded {with_['name']}"
        if action == "actions/download-artifact":
            store = self.artifacts.get(str(with_.get("run-id") or run_id), {})
            target = ws / str(with_.get("path", "."))
            if "name" in with_:
                if with_["name"] not in store:
                    return 1, f"artifact {with_['name']} not found"
                shutil.copytree(store[with_["name"]], target, dirs_exist_ok=True)
                return 0, "downloaded"
            for name, path in store.items():
                if fnmatch.fnmatch(name, str(with_.get("pattern", "*"))):
                    shutil.copytree(path, target / name, dirs_exist_ok=True)
            return 0, "downloaded"
        raise ExprError(f"action {uses} is not known to the local runner")


def _list(v: Any) -> list[str]:
    return [] if v is None else [v] if isinstance(v, str) else list(v)


def _outputs(legs: list[JobRun]) -> dict[str, str]:
    merged: dict[str, str] = {}
    for leg in legs:  # like GitHub, a matrix's legs write one set of outputs (the last one wins)
        merged.update(leg.outputs)
    return merged


def _combined(legs: list[JobRun]) -> str:
    if all(r.result == "skipped" for r in legs):
        return "skipped"
    for result in ("failure", "cancelled"):
        if any(r.result == result for r in legs):
            return result
    return "success"


def _matrix(job: dict) -> list[dict[str, Any]]:
    matrix = (job.get("strategy") or {}).get("matrix") or {}
    keys = [k for k in matrix if k not in ("include", "exclude")]
    if not keys:
        return [{}]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(matrix[k] for k in keys))]
