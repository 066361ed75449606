"""Run the evaluation session in a child process and take the verdict from the results file it wrote.

Gates and python checks are pull-request code, and they run inside the pytest
session. Whatever that code does to the process — ``os._exit(0)``,
``pytest.exit(returncode=0)``, a crash, a SIGKILL — the exit code of
``mergegate run`` must not turn green by it. So the CLI forks, the child runs the
session, and this parent decides:

- before any gate runs, the child sends this process the evaluation's own verdict
  (:meth:`Evaluation.floor`: blocking cases, request errors, failed phases) and its
  case count, down a pipe; gates run later, in the child, and cannot reach it;
- the child wrote ``results.json`` (the previous one was removed before the fork),
  its exit code agrees with the verdict in it, that verdict is no better than the
  floor and it holds every case: that verdict;
- anything else is INCOMPLETE, and the parent writes an INCOMPLETE result saying why.

The parent also holds the output folder's lock for the whole run (two runs in one
folder would mix results and server pid files) and stops servers a killed run
left behind, before it starts and after the child ends.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Optional

from ..errors import InputError
from ..redact import RedactingStream, Redactor

if TYPE_CHECKING:
    from ..config import LoadedConfig
    from ..results import ShardMeta
    from ..verdict import Verdict

__all__ = ["output_lock", "supervised", "OUTPUT_FILES"]

OUTPUT_FILES = ("results.json", "report.md", "report.html", "junit.xml")
"""What a run writes into its output folder; removed before it starts, so a stale GO is never read as this run's."""

_LOCK = ".mergegate.lock"


@contextlib.contextmanager
def output_lock(out: Path) -> Iterator[IO[str]]:
    """Hold an exclusive lock on ``out`` for one run; a second run in the same folder is a one-line error.

    A read-only or full output folder is a one-line error too (exit 2, not the NO-GO code).
    """
    try:
        out.mkdir(parents=True, exist_ok=True)
        fh = open(out / _LOCK, "a+")  # noqa: SIM115 - held open for the whole run, closed below
    except OSError as exc:
        raise InputError(f"cannot write to the output folder: {exc.strerror or exc}", out) from None
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            raise InputError(f"another mergegate run is using this output folder (pid {holder}); "
                             "wait for it, or give this run its own --output", out) from None
        try:
            fh.seek(0)
            fh.truncate()
            fh.write(f"{os.getpid()}\n")
            fh.flush()
            for name in OUTPUT_FILES:
                (out / name).unlink(missing_ok=True)
        except OSError as exc:
            raise InputError(f"cannot write to the output folder: {exc.strerror or exc}", out) from None
        yield fh
    finally:
        fh.close()


def _die_with_parent() -> None:
    # If the parent is SIGKILLed, the child (which owns the model servers) gets SIGTERM and stops them.
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _terminate_once(signum: int, frame: object) -> None:
    """Turn the first SIGTERM into KeyboardInterrupt (every cleanup runs: servers stop); ignore the ones after it.

    When the parent dies, the kernel sends the parent-death signal once per thread of the parent as the child
    is reparented from one to the next: a second KeyboardInterrupt would cut the servers' stop short.
    """
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def _child(session: Callable[[Callable[[Verdict, int, bool], None]], int], record_fd: int, redactor: Redactor) -> None:
    """Run ``session`` in the forked child and end the child with its code; never return."""
    code = 2
    if redactor:  # what the session prints (reasons, server log tails) goes through the mask
        sys.stdout, sys.stderr = RedactingStream(sys.stdout, redactor), RedactingStream(sys.stderr, redactor)

    def send_record(floor: Verdict, cases: int, partial: bool) -> None:
        with os.fdopen(record_fd, "w") as fh:  # closed once sent: nothing later in this process can write it again
            json.dump({"outcome": floor.outcome, "reasons": list(floor.reasons), "cases": cases, "partial": partial}, fh)

    try:
        signal.signal(signal.SIGTERM, _terminate_once)
        _die_with_parent()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        code = session(send_record)
    except BaseException as exc:  # noqa: BLE001 - nothing may escape into the parent's code path
        if not isinstance(exc, (SystemExit, KeyboardInterrupt)):
            print(f"mergegate: error: the evaluation failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        code = exc.code if isinstance(exc, SystemExit) and isinstance(exc.code, int) else 2
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _wait(pid: int) -> int:
    """Wait for the child, passing on termination requests; return its exit status (128 + N when signal N ended it)."""
    interactive = os.isatty(0)

    def forward(signum: int, frame: object) -> None:
        # Ctrl-C in a terminal already reached the child (same process group); a SIGINT sent to this
        # process alone (CI cancelling the step) and any SIGTERM are passed on, once.
        if signum == signal.SIGINT and interactive:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            try:
                _, status = os.waitpid(pid, 0)
                break
            except InterruptedError:  # pragma: no cover - PEP 475 retries; kept for signal handlers that raise
                continue
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code  # the shell's convention for "ended by signal N"


_SEVERITY = {"GO": 0, "PENDING": 0, "NO-GO": 1, "INCOMPLETE": 2}


def _verdict_in(results: Path, child_code: int, record: Optional[dict]) -> tuple[Optional[int], str]:
    """Return (exit code, '') from the results the child wrote, or (None, why) when they cannot be trusted."""
    how = f"signal {child_code - 128}" if child_code > 128 else f"exit status {child_code}"
    try:
        data = json.loads(results.read_bytes())
    except FileNotFoundError:
        why = {0: ": something in a gate or check ended the process early"}.get(child_code, "; see the output above")
        return None, f"the evaluation process ended ({how}) without writing results.json{why}"
    except (OSError, ValueError) as exc:
        return None, f"the evaluation process ended ({how}) and its results.json is unreadable: {exc}"
    from ..verdict import EXIT_CODES

    if not isinstance(data, dict) or data.get("verdict") not in EXIT_CODES or EXIT_CODES[data["verdict"]] != data.get("exit_code"):
        return None, f"the evaluation process ended ({how}) with a results.json that holds no consistent verdict"
    verdict, code = data["verdict"], data["exit_code"]
    if child_code != code:
        return None, (f"the evaluation process ended with {how}, but its results say {verdict} (exit {code}): "
                      "something ended the process after the verdict (a gate's atexit hook, a signal)")
    if record is None:  # no evaluation completed: only a verdict that says so is believable
        return (code, "") if verdict == "INCOMPLETE" else (None, f"results.json says {verdict}, but no evaluation completed")
    if _SEVERITY[verdict] < _SEVERITY[record["outcome"]] or len(data.get("cases") or ()) != record["cases"]:
        said = "; ".join(record["reasons"][:3]) or record["outcome"]
        return None, (f"results.json says {verdict} with {len(data.get('cases') or ())} case(s), but the evaluation itself "
                      f"found {record['outcome']} over {record['cases']} case(s) ({said}): the results were changed "
                      "while the gates ran")
    if record.get("partial") and verdict == "GO":
        return None, "results.json says GO, but the run was partial (--limit, --no-judge, --no-benchmarks): the results were changed"
    return code, ""


def _write_incomplete(loaded: LoadedConfig, out: Path, reason: str, shard: Optional[ShardMeta]) -> None:
    """Write results.json and the reports for a run whose evaluation process did not finish (INCOMPLETE)."""
    from ..evaluation import Evaluation
    from ..report import write_outputs

    evaluation = Evaluation(loaded, [], set(), progress=False, command=list(sys.argv), shard=shard)
    write_outputs(evaluation.finish([], [reason]), out)


def _read_record(fd: int, into: list[dict]) -> None:
    """Read the child's evaluation record (JSON) from ``fd`` until the child closes it; keep it when whole."""
    with os.fdopen(fd, "rb") as fh:
        raw = fh.read()
    with contextlib.suppress(ValueError):
        record = json.loads(raw) if raw else None
        if isinstance(record, dict) and record.get("outcome") in _SEVERITY and isinstance(record.get("cases"), int):
            into.append(record)


def supervised(session: Callable[[Callable[[Verdict, int, bool], None]], int], loaded: LoadedConfig, out: Path,
               shard: Optional[ShardMeta] = None) -> int:
    """Run ``session`` (the pytest session; gets the callback for the evaluation's record, returns the verdict's
    exit code) in a child; return the exit code this process can vouch for."""
    from ..serving import stop_leftovers

    redactor = Redactor.from_config(loaded.config)
    with output_lock(out):
        left = stop_leftovers(out / "logs")  # a run killed before it could stop its servers (its pid files are here)
        if left:
            print(f"mergegate: stopped {len(left)} server(s) a previous run in {out} left behind", file=sys.stderr)
        try:
            child_code, record = _fork(session, redactor)
            if stop_leftovers(out / "logs"):
                print("mergegate: stopped server(s) the evaluation process left running", file=sys.stderr)
            code, why = _verdict_in(out / "results.json", child_code, record)
            if code is not None:
                return code
            try:
                _write_incomplete(loaded, out, redactor.text(why), shard)
            except OSError as exc:  # the folder filled up or went read-only: that, not the child's exit, is the news
                raise InputError(f"cannot write the results: {exc.strerror or exc}; verdict INCOMPLETE", out) from None
            print(f"mergegate: error: {redactor.text(why)}; verdict INCOMPLETE", file=sys.stderr)
            return 2
        finally:
            with contextlib.suppress(OSError):
                redactor.files(out)  # whatever reached the files (an endpoint's error, a server's log) loses its secrets


def _fork(session: Callable[[Callable[[Verdict, int, bool], None]], int], redactor: Redactor) -> tuple[int, Optional[dict]]:
    """Run ``session`` in a forked child; return its exit status and the evaluation record it sent (None if none)."""
    sys.stdout.flush()
    sys.stderr.flush()
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_fd)
        _child(session, write_fd, redactor)
    os.close(write_fd)
    records: list[dict] = []
    # Read while the child runs: a record larger than the pipe's buffer would otherwise block it.
    reader = threading.Thread(target=_read_record, args=(read_fd, records), daemon=True)
    reader.start()
    child_code = _wait(pid)
    reader.join(timeout=10)
    return child_code, (records[0] if records else None)
