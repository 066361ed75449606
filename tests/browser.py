"""Drives report.html in a real Chromium (Playwright for Python, Debian's chromium package): what a reviewer does with it.

``check_report_in_browser`` is shared by tests/test_viewer.py (a built run) and the
demo stories (the real demo results). Playwright's own browser download does not
work everywhere; Debian's ``chromium`` does, and scripts/bootstrap.sh installs it
where it can (root and apt-get).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Optional

import pytest

WIDTH, HEIGHT = 1280, 800
_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def chromium_path() -> Optional[str]:
    """Return the Chromium to drive: $MERGEGATE_CHROMIUM, else the first on PATH (Debian: /usr/bin/chromium), else None."""
    env = os.environ.get("MERGEGATE_CHROMIUM")
    if env:
        return env
    return next((p for p in map(shutil.which, _CANDIDATES) if p), None)


def require_browser() -> str:
    """Return Chromium's path, or skip the test saying what is missing and how it gets installed."""
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed: pip install -e '.[dev]' (scripts/bootstrap.sh does)")
    exe = chromium_path()
    if exe is None:
        pytest.skip("no Chromium on this machine: `apt-get install chromium` (scripts/bootstrap.sh does this as root where apt-get "
                    "works), or set MERGEGATE_CHROMIUM to a Chromium binary")
    return exe


_EXPECT = {"failed": "x.c.p === false", "regressed": "x.bl.p === true && x.c.p === false", "improved": "x.bl.p === false && x.c.p === true"}


def _expected_ids(page: Any, status: str) -> list[str]:
    # The expectation comes from the page's own data block, not from the viewer's code under test.
    return page.evaluate(f"""() => {{ const d = JSON.parse(document.getElementById('mg-data').textContent);
        return d.cases.filter(x => {_EXPECT[status]}).map(x => d.suites[x.s] + '::' + x.i + '|' + (x.r || '')); }}""")


def _listed_ids(page: Any) -> list[str]:
    return page.evaluate("""() => Array.from(document.querySelectorAll('#cases tbody tr[data-case]'))
        .map(tr => tr.dataset.case + '|' + (tr.dataset.role || ''))""")


def _show_all(page: Any) -> None:
    more = page.locator("#more")
    while more.is_visible():
        more.click()


def _pick(page: Any, wanted: Optional[str]) -> dict[str, Any]:
    """Return the failed case to open: ``wanted`` (suite::id), else a regression with a reference and a failed check's reason."""
    return page.evaluate("""wanted => { const d = JSON.parse(document.getElementById('mg-data').textContent);
        const failed = d.cases.filter(x => x.c.p === false && (!wanted || d.suites[x.s] + '::' + x.i === wanted));
        const score = x => (x.bl.p === true) * 4 + (x.ref !== undefined) * 2 + x.c.ch.some(k => k[3] === false && k[4]) * 1;
        const best = failed.slice().sort((a, b) => score(b) - score(a))[0];
        if (!best) { return null; }
        return {id: d.suites[best.s] + '::' + best.i, role: best.r || '', ref: best.ref === undefined ? null : best.ref,
                cand: best.c.t, base: best.bl.t, error: best.c.e || null,
                reason: (best.c.ch.find(k => k[3] === false && k[4]) || [null, null, null, null, null])[4]}; }""", wanted)


def _visible(page: Any, text: Optional[str], where: str) -> bool:
    """Return whether the start of ``text`` shows (as text) in the open case's ``where`` element."""
    if not text:
        return True
    probe = " ".join(text.split())[:120]
    shown = page.evaluate(f"() => Array.from(document.querySelectorAll({json.dumps(where)})).map(e => e.innerText).join('\\n')")
    return probe in " ".join(shown.split())


def _overflow(page: Any) -> int:
    return page.evaluate("() => document.scrollingElement.scrollWidth")


def check_report_in_browser(html_path: Path, screenshot: Path, *, case: Optional[str] = None,
                             executable: Optional[str] = None) -> dict[str, Any]:
    """Load ``html_path`` at 1280x800 and assert what a reviewer relies on; return counts and the screenshots written.

    Asserted: no console error or page error, no network request, no horizontal scroll;
    filtering to failures (and to regressions, to improvements) lists every such case; opening one shows the expected value,
    both outputs and the failing check's reason; nothing from the outputs ran (no dialog,
    no element a hostile output would add). ``case`` (suite::id) is the failed case to open
    (default: a regression with a reference and a reason). ``screenshot`` gets the opened
    case; a second file ``<stem>-top.png`` the top of the page.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    exe = executable or require_browser()
    errors: list[str] = []
    requests: list[str] = []
    dialogs: list[str] = []
    with sync_playwright() as pw:
        # --no-sandbox: Chromium refuses to start its sandbox as root (CI's and this machine's user)
        browser = pw.chromium.launch(executable_path=exe, headless=True, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
            page.set_default_timeout(15_000)
            page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}") if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.on("request", lambda r: None if r.url.startswith(("file:", "data:", "about:")) else requests.append(r.url))
            page.goto(html_path.resolve().as_uri())
            try:
                page.wait_for_selector("body[data-ready='1']", timeout=30_000)
            except PlaywrightTimeout:
                raise AssertionError(f"the viewer did not start: {errors or 'no error reported'}") from None
            total = page.evaluate("() => JSON.parse(document.getElementById('mg-data').textContent).cases.length")
            width_loaded = _overflow(page)
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            top = screenshot.with_name(f"{screenshot.stem}-top{screenshot.suffix}")
            page.screenshot(path=str(top))

            counts = {}
            for status in ("regressed", "improved", "failed"):  # 'failed' last: the case to open is picked from its list
                page.select_option("#f-status", status)
                _show_all(page)
                expected, listed = _expected_ids(page, status), _listed_ids(page)
                assert sorted(listed) == sorted(expected), f"filter {status!r} listed {len(listed)} of {len(expected)} cases"
                counts[status] = len(listed)
            opened = None
            if expected:
                picked = _pick(page, case)
                assert picked is not None, f"{case} is not a failed case of {html_path}"
                page.fill("#f-q", picked["id"])
                page.wait_for_function("id => Array.from(document.querySelectorAll('#cases tbody tr[data-case]'))"
                                       ".every(tr => tr.dataset.case.includes(id))", arg=picked["id"])
                row = page.locator(f"#cases tbody tr[data-case={json.dumps(picked['id'])}]").first
                row.locator("button.case").click()
                page.wait_for_selector("td.detail")
                page.locator("td.detail").first.scroll_into_view_if_needed()
                assert _visible(page, picked["ref"], "td.detail pre.ref"), f"{picked['id']}: expected value not visible"
                assert _visible(page, picked["cand"] or picked["error"], "td.detail .pair > div:first-child"), \
                    f"{picked['id']}: candidate output not visible"
                assert _visible(page, picked["base"], "td.detail .pair > div:last-child"), f"{picked['id']}: baseline output not visible"
                assert _visible(page, picked["reason"], "td.detail table.checks"), f"{picked['id']}: failing check's reason not visible"
                opened = picked["id"]
            width_open = _overflow(page)
            page.screenshot(path=str(screenshot))
            injected = page.evaluate("() => ({img: document.images.length, scripts: document.scripts.length, "
                                     "pwned: Boolean(window.__mergegate_pwned)})")
        finally:
            browser.close()
    assert not errors, errors
    assert not requests, f"the report reached for the network: {requests[:5]}"
    assert not dialogs and injected == {"img": 0, "scripts": 2, "pwned": False}, (dialogs, injected)
    assert max(width_loaded, width_open) <= WIDTH, f"horizontal scroll: page {max(width_loaded, width_open)} px wide in a {WIDTH} px window"
    return {"cases": total, **counts, "listed": len(listed), "opened": opened,
            "width": max(width_loaded, width_open), "screenshots": [str(screenshot), str(top)]}
