"""`mergegate view` (open a run's report.html, or serve its folder) and `mergegate compare` (what changed between two runs).

Nothing heavy at import: `mergegate --help` builds these parsers too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import InputError

if TYPE_CHECKING:
    from http.server import ThreadingHTTPServer

__all__ = ["add_view_commands", "cmd_view", "cmd_compare", "locate_report", "serve_folder"]


def add_view_commands(sub: argparse._SubParsersAction) -> None:
    """Add the `view` and `compare` subcommands to the CLI's subparsers."""
    view = sub.add_parser("view", help="open a run's report.html, the offline viewer (written from results.json when missing or older)")
    view.add_argument("results", nargs="?", default="results",
                      help="results.json, report.html, or the folder holding them (default: results)")
    view.add_argument("--serve", type=int, default=None, metavar="PORT",
                      help="serve the folder on http://127.0.0.1:PORT until Ctrl-C (0: any free port) instead of opening the file")
    view.add_argument("--no-open", action="store_true", help="do not start a browser: print the report's path (or URL)")
    view.add_argument("--rebuild", action="store_true", help="write report.html from results.json even if it looks up to date")
    view.set_defaults(fn=cmd_view)

    com = sub.add_parser("compare", help="what changed between two runs: flipped cases, metrics, gates, verdict; writes compare.html")
    com.add_argument("before", help="run A: results.json or its folder")
    com.add_argument("after", help="run B: results.json or its folder")
    com.add_argument("--output", default=None, metavar="DIR", help="folder for compare.html (default: run B's folder)")
    com.set_defaults(fn=cmd_compare)


def _results_file(arg: str) -> Path:
    """Return the results.json that ``arg`` names (the file, or a folder holding one); raise InputError if there is none."""
    path = Path(arg)
    if path.is_dir():
        path = path / "results.json"
    if not path.is_file():
        raise InputError("no such results file (pass a results.json or the folder of a run)", path)
    return path


def _is_fresh(report: Path, results: Path) -> bool:
    """Return whether ``report`` is this version's viewer and not older than ``results``."""
    from ..report.html import VIEWER_MARKER

    try:
        if report.stat().st_mtime < results.stat().st_mtime:
            return False
        with open(report, encoding="utf-8", errors="replace") as fh:
            return VIEWER_MARKER in fh.read(2048)
    except OSError:
        return False


def locate_report(arg: str, rebuild: bool = False) -> Path:
    """Return the report.html for ``arg`` (results.json, report.html or a run's folder), writing it from results.json if needed.

    It is written next to results.json; where that folder is read-only, into a temporary folder.
    """
    path = Path(arg)
    if path.suffix == ".html" and path.is_file():
        return path
    if path.is_dir() and not (path / "results.json").exists() and (path / "report.html").is_file():
        return path / "report.html"  # a downloaded artifact may hold the report alone
    results = _results_file(arg)
    report = results.with_name("report.html")
    if not rebuild and _is_fresh(report, results):
        return report
    from ..report.html import write_html
    from ..results.io import load_results

    run = load_results(results)
    try:
        return write_html(run, report)
    except OSError:
        import tempfile

        return write_html(run, Path(tempfile.mkdtemp(prefix="mergegate-view-")) / "report.html")


def serve_folder(folder: Path, port: int) -> ThreadingHTTPServer:
    """Return an HTTP server of ``folder`` on 127.0.0.1 only (never another interface: results hold prompts and outputs)."""
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass  # a line per request would bury the URL

    try:
        return ThreadingHTTPServer(("127.0.0.1", port), functools.partial(Quiet, directory=str(folder)))
    except OSError as exc:
        raise InputError(f"cannot serve on 127.0.0.1:{port}: {exc.strerror}") from None


def _open(target: str) -> bool:
    import webbrowser

    try:
        return webbrowser.open(target)
    except webbrowser.Error:
        return False


def cmd_view(args: argparse.Namespace) -> int:
    """Open (or serve, or just print) the report.html of a run."""
    report = locate_report(args.results, rebuild=args.rebuild)
    if args.serve is None:
        print(report)
        if not args.no_open and not _open(report.resolve().as_uri()):
            print("mergegate: no browser to open; open the file above", file=sys.stderr)
        return 0
    server = serve_folder(report.parent, args.serve)
    url = f"http://127.0.0.1:{server.server_address[1]}/{report.name}"
    print(f"serving {report.parent} at {url} (Ctrl-C stops)", flush=True)
    if not args.no_open:
        _open(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Print what changed from run A to run B and write compare.html."""
    before, after = _results_file(args.before), _results_file(args.after)
    from ..report.compare import compare_runs, summary_lines, write_compare_html
    from ..results.io import load_results

    a, b = load_results(before), load_results(after)
    result = compare_runs(a, b)
    out = Path(args.output) if args.output else after.parent
    try:
        out.mkdir(parents=True, exist_ok=True)
        path = write_compare_html(result, a, b, out / "compare.html", names=(str(before), str(after)))
    except OSError as exc:
        raise InputError(f"cannot write compare.html: {exc.strerror}", out) from None
    for line in summary_lines(result):
        print(line)
    print(f"compare.html: {path}")
    return 0
