"""The pytest plugin: suite files become tests, gates get a ``results`` fixture.

Each hook hands off to the one :class:`~mergegate.session.MergegateSession`
kept on ``config``. Registered through the ``pytest11`` entry point; inert in
sessions that collect no suite and request no results.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional

import pytest

from .errors import InputError, MergegateError
from .results import CaseResult, InsufficientEvidence, NotEvaluated, SuiteView
from .session import MergegateSession, RunOptions
from .suites import Case, LoadedSuite

_KEY = pytest.StashKey[MergegateSession]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("mergegate", "mergegate LLM evaluation gate")
    group.addoption("--mergegate-config", default=None, help="path to mergegate.yaml (default: ROOTDIR/mergegate.yaml)")
    group.addoption("--mergegate-output", default=None, help="folder for results.json and reports (default: the config's output_dir)")
    group.addoption("--mergegate-no-progress", action="store_true", help="no progress bar while generating")
    group.addoption("--mergegate-shard", default=None, metavar="I/N", help="evaluate only shard I of N of the selected cases (no gates)")
    group.addoption("--mergegate-sample", default=None, type=int, metavar="N",
                    help="evaluate a seeded, category-stratified sample of N of the selected cases (intervals account for it)")
    group.addoption("--mergegate-merge", action="append", default=None, metavar="RESULTS_JSON",
                    help="take case results from these shard results.json files instead of the models (repeatable)")
    group.addoption("--mergegate-history", default=None, metavar="JSONL", help="the main line's history, for the report's trend")
    group.addoption("--mergegate-aa", action="store_true", help="A/A run: the baseline's config on both sides (the noise floor)")
    # the quick-iteration flags of `mergegate run`, for a plain pytest run (a partial run is never GO)
    group.addoption("--mergegate-limit", default=None, type=int, metavar="N", help="only the first N cases of each suite")
    group.addoption("--mergegate-no-judge", action="store_true", help="leave out cases with a judge check")
    group.addoption("--mergegate-no-benchmarks", action="store_true", help="do not run the lm-eval benchmarks")


def pytest_configure(config: pytest.Config) -> None:
    import sys

    config.addinivalue_line("markers", "mergegate_case: an eval case collected from a suite file")
    config.addinivalue_line("markers", "blocking: an eval case whose failure blocks the merge")
    # `mergegate run` passes its RunOptions as a plugin object (pytest.main(argv, plugins=[options])): typed, and
    # carrying the config and suites it already validated. A bare `pytest` run builds them from the options.
    given = [p for p in config.pluginmanager.get_plugins() if isinstance(p, RunOptions)]
    if given:
        options = given[0]
    else:
        from .evaluation import parse_shard  # here: a plain pytest session without mergegate loads no client

        shard = config.getoption("--mergegate-shard")
        try:
            shard_meta = parse_shard(shard) if shard else None
        except InputError as exc:
            raise pytest.UsageError(str(exc)) from None
        history = config.getoption("--mergegate-history")
        options = RunOptions(config_path=config.getoption("--mergegate-config"), output_dir=config.getoption("--mergegate-output"),
                             progress=not config.getoption("--mergegate-no-progress"), command=tuple(sys.argv), shard=shard_meta,
                             sample=config.getoption("--mergegate-sample"),
                             merge_from=tuple(Path(p) for p in config.getoption("--mergegate-merge") or ()),
                             history=Path(history) if history else None, aa=config.getoption("--mergegate-aa"),
                             limit=config.getoption("--mergegate-limit"), no_judge=config.getoption("--mergegate-no-judge"),
                             no_benchmarks=config.getoption("--mergegate-no-benchmarks"))
    config.stash[_KEY] = MergegateSession(options, Path(str(config.rootpath)))


def _session(config: pytest.Config) -> MergegateSession:
    return config.stash[_KEY]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> Optional[pytest.Collector]:
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    try:
        if not _session(parent.config).is_suite_path(file_path):
            return None
    except InputError:
        pass  # a broken mergegate.yaml: collect the file so the error is shown
    return SuiteFile.from_parent(parent, path=file_path)


class SuiteFile(pytest.File):
    """A suite YAML file; collects one :class:`SuiteNode`."""

    def collect(self):
        loaded = _session(self.config).suite_at(self.path)
        yield SuiteNode.from_parent(self, name=loaded.name, suite=loaded)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, MergegateError):
            _session(self.config).failures.append(str(excinfo.value))
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class SuiteNode(pytest.Collector):
    """One suite; its children are the cases (node ids read ``suite::case_id``)."""

    def __init__(self, *, suite: LoadedSuite, **kwargs: Any):
        super().__init__(**kwargs)
        self.suite = suite

    def collect(self):
        for case in self.suite.suite.cases:
            yield CaseItem.from_parent(self, name=case.id, suite=self.suite, case=case)


class CaseFailed(AssertionError):
    """The candidate's output failed a check of this case."""


_CASE_MARK, _BLOCKING_MARK = pytest.mark.mergegate_case, pytest.mark.blocking  # one each, shared by every case item


class CaseItem(pytest.Item):
    """One eval case: passes when the candidate's output meets every thresholded check."""

    def __init__(self, *, suite: LoadedSuite, case: Case, **kwargs: Any):
        super().__init__(**kwargs)
        self.suite = suite
        self.case = case
        self.add_marker(_CASE_MARK)
        if case.blocking:
            self.add_marker(_BLOCKING_MARK)

    def runtest(self) -> None:
        session = _session(self.config)
        result = session.case_result(self.suite.name, self.case.id)
        if result is None:
            raise CaseFailed("not evaluated: " + ("; ".join(session.failures) or "generation did not run"))
        self.user_properties.append(("blocking", self.case.blocking))
        self.user_properties.append(("category", self.case.category))
        if result.candidate.passed is False:
            raise CaseFailed(_explain(result))

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, CaseFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, self.suite.case_lines.get(self.case.id, 1) - 1, f"{self.suite.name}::{self.case.id}"


def _explain(result: CaseResult) -> str:
    side = result.candidate
    kind = "blocking case" if result.blocking else "case (non-blocking)"
    lines = [f"{kind} {result.suite}::{result.id} failed"]
    if side.generation.error:
        lines.append(f"  generation error: {side.generation.error}")
    for c in side.checks:
        if c.passed is False:
            lines.append(f"  ✗ {c.type}: {c.detail}")
    text = side.generation.text
    lines.append("  output: " + (repr(text[:300]) + ("…" if len(text) > 300 else "")))
    if result.baseline.passed:
        lines.append("  (the baseline passed this case)")
    return "\n".join(lines)


def _is_case(item: Any) -> bool:
    return isinstance(item, CaseItem)


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Any:
    """A gate file that fails to import (a syntax error, say): the run is INCOMPLETE and the reason names file and line."""
    report = yield
    if report.failed and isinstance(collector, pytest.Module):
        _session(collector.config).failures.append(_collect_error(str(collector.path), str(report.longrepr)))
    return report


def _collect_error(path: str, text: str) -> str:
    """Return ``path:line: the error`` from pytest's text of a collection error (the last frame in ``path`` gives the line)."""
    lines = [ln.removeprefix("E").strip() for ln in text.splitlines() if ln.strip()]
    where = [int(m.group(1)) for ln in lines for m in [re.search(r'File "' + re.escape(path) + r'", line (\d+)', ln)] if m]
    where += [int(m.group(1)) for ln in lines for m in [re.search(re.escape(path) + r":(\d+)", ln)] if m]
    error = next((ln for ln in reversed(lines) if re.match(r"^[A-Za-z_.]*(Error|Exception)\b", ln)), lines[-1] if lines else "error")
    return f"gate file {path}{f':{where[-1]}' if where else ''} failed to load: {error}"


@pytest.hookimpl(trylast=True)  # after -k/-m have deselected: shards split what is left
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    ms = _session(config)
    try:
        kept, dropped = ms.select_partial(items, _is_case)
        more_kept, more_dropped = ms.select_sample(kept, _is_case)
        kept, dropped = more_kept, dropped + more_dropped
        more_kept, more_dropped = ms.select_shard(kept, _is_case)
        kept, dropped = more_kept, dropped + more_dropped
    except MergegateError as exc:
        raise pytest.UsageError(str(exc)) from None
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    _session(session.config).evaluate(session.items, _is_case, session.config.option.keyword)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: Optional[pytest.Item]) -> Optional[bool]:
    """Run a case item without per-test capture and logging: it runs no user code, only reads its result.

    At 10,000 cases pytest's full protocol (output capture and log handlers
    around each of three phases) was ~3 s of a harness-bound run. A case still
    produces its call and teardown reports through the usual hooks, so the
    terminal, ``-x``, junit and other plugins see it as any test.
    """
    if not _is_case(item):
        return None
    ihook = item.ihook
    ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for when, step in (("call", item.runtest), ("teardown", _nothing)):  # no setup report: a case has no setup
        call = pytest.CallInfo.from_call(step, when=when)  # type: ignore[arg-type]
        ihook.pytest_runtest_logreport(report=ihook.pytest_runtest_makereport(item=item, call=call))
    ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True


def _nothing() -> None:
    """A case has no teardown."""


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Any:
    """A gate that reads what ``--no-benchmarks`` left out is skipped, saying so (the partial run is never GO)."""
    try:
        return (yield)
    except NotEvaluated as exc:
        if exc.skip:
            pytest.skip(str(exc))
        raise


def pytest_runtest_setup(item: pytest.Item) -> None:
    if not _is_case(item):
        _session(item.config).begin_gate()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    outcome = yield
    report = outcome.get_result()
    if not _is_case(item):
        raised = call.excinfo is not None and not call.excinfo.errisinstance((AssertionError, pytest.skip.Exception))
        insufficient = call.excinfo is not None and call.excinfo.errisinstance(InsufficientEvidence)
        _session(item.config).record(report, raised=raised, insufficient=insufficient)


@pytest.hookimpl(wrapper=True, specname="pytest_runtestloop")
def pytest_runtestloop_ended_early(session: pytest.Session) -> Any:
    """Ctrl-C, or ``pytest.exit()`` from a gate (even with returncode 0): the gates after it never ran, so never GO."""
    try:
        return (yield)
    except (pytest.exit.Exception, KeyboardInterrupt) as exc:
        _session(session.config).failures.append(f"the pytest session was ended early ({type(exc).__name__}: {exc}); "
                                                 "the tests after that point never ran")
        raise


@pytest.hookimpl(tryfirst=True)  # before junit's writer: each then reuses the memory the other freed
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    ms = _session(session.config)
    if session.config.option.collectonly and not ms.failures:
        ms.active = False  # listing tests evaluates nothing and decides nothing
        return
    # INTERRUPTED: Ctrl-C or a collection error (a broken suite or gate file): never GO.
    code = ms.finish(interrupted=exitstatus == pytest.ExitCode.INTERRUPTED)
    if code is not None:
        session.exitstatus = code


def pytest_report_teststatus(report: pytest.TestReport, config: pytest.Config) -> Optional[tuple[str, str, tuple[str, dict]]]:
    """Show a gate that lacked evidence, or read an advisory judge, as what it is, not as FAILED: neither blocks the merge."""
    if report.when != "call" or not report.failed:
        return None
    gate = _session(config).gate_reports.get(report.nodeid)
    if gate is None or gate.outcome not in ("insufficient", "advisory"):
        return None
    word = "INSUFFICIENT EVIDENCE" if gate.outcome == "insufficient" else "ADVISORY"
    return gate.outcome, "?" if gate.outcome == "insufficient" else "a", (word, {"yellow": True})


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    ms = _session(config)
    if not ms.active:
        return
    tr = terminalreporter
    run = ms.run
    if run is None:
        tr.section("mergegate: INCOMPLETE", sep="=", red=True, bold=True)
        for f in ms.failures:
            tr.write_line(f)
        return
    colour = {"GO": {"green": True}, "NO-GO": {"red": True}, "INCOMPLETE": {"yellow": True}, "PENDING": {"cyan": True}}[run.verdict]
    tr.section(f"mergegate verdict: {run.verdict} (exit {run.exit_code})", sep="=", bold=True, **colour)
    for r in run.reasons:
        tr.write_line(f"  {r}")
    if run.gates:
        tr.write_line("")
        tr.write_line("gates:")
        for g in run.gates:
            mark = {"passed": "PASS", "failed": "FAIL", "error": "ERROR", "skipped": "SKIP", "advisory": "ADVSY",
                    "insufficient": "INSUF"}[g.outcome]
            msg = g.message.splitlines()[0][:150] if g.message else ""
            tr.write_line(f"  {mark:5} {g.name}  {msg}")
    if run.suites:
        tr.write_line("")
        tr.write_line(f"{'suite':24} {'role':8} {'n':>4} {'candidate':>10} {'baseline':>10} {'delta':>8}")

        def fmt(v: Optional[float]) -> str:
            return "-" if v is None else f"{v * 100:.1f}%"

        for s in run.suites:
            pr = s.pass_rate
            delta = "-" if pr.delta is None else f"{pr.delta * 100:+.1f}pt"
            tr.write_line(f"{s.name[:24]:24} {s.role:8} {s.n:>4} {fmt(pr.candidate):>10} {fmt(pr.baseline):>10} {delta:>8}")
    nonblocking = sum(1 for c in run.cases if not c.blocking and c.candidate.passed is False)
    if nonblocking:
        tr.write_line(f"\n{nonblocking} non-blocking case failure(s): reported, not merge-blocking")
    gen = run.generation
    tr.write_line(f"requests sent {gen.requests_sent}, cache hits {gen.cache_hits}, failed {gen.errors} (tolerance {gen.error_tolerance})")
    if ms.written:
        tr.write_line("wrote " + ", ".join(str(p) for p in ms.written.values()))
    for w in ms.warnings:
        tr.write_line(f"warning: {w}", yellow=True)


# -- fixtures for gates --------------------------------------------------------------


@pytest.fixture(scope="session")
def results(request: pytest.FixtureRequest):
    """The run's results (:class:`mergegate.results.Results`)."""
    return _session(request.config).results()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    roles = {"target_suite": "target", "general_suite": "general", "any_suite": None}
    for argname, role in roles.items():
        if argname in metafunc.fixturenames:
            ms = _session(metafunc.config)
            try:
                suites = ms.all_suites()
            except MergegateError as exc:
                ms.failures.append(str(exc))
                suites = []
            names = [s.name for s in suites if role is None or s.suite.role == role]
            metafunc.parametrize(argname, names, indirect=True, ids=names)


def _suite_fixture(request: pytest.FixtureRequest) -> SuiteView:
    results = _session(request.config).results()
    name = request.param
    if name not in {s.name for s in results.suites}:
        pytest.skip(f"suite {name!r} not evaluated in this session")
    return results.suite(name)


@pytest.fixture
def target_suite(request: pytest.FixtureRequest) -> SuiteView:
    """Each suite whose role is 'target' (the gate runs once per suite)."""
    return _suite_fixture(request)


@pytest.fixture
def general_suite(request: pytest.FixtureRequest) -> SuiteView:
    """Each suite whose role is 'general' (the gate runs once per suite)."""
    return _suite_fixture(request)


@pytest.fixture
def any_suite(request: pytest.FixtureRequest) -> SuiteView:
    """Every suite (the gate runs once per suite)."""
    return _suite_fixture(request)
