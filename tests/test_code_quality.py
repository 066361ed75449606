"""The code's own standards, checked on every test run: lint, types, complexity, module size, import time.

The tools are pinned dev dependencies (pyproject.toml), so the verdict of these
tests changes only when the code does.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "mergegate"
BIN = Path(sys.executable).parent
MAX_COMPLEXITY = 20  # radon's cyclomatic complexity, per function
MAX_MODULE_LINES = 400


def _tool(name: str) -> str:
    exe = BIN / name
    if not exe.exists():
        pytest.fail(f"{name} is a dev dependency: pip install -e .[dev]")
    return str(exe)


def test_ruff_is_clean():
    out = subprocess.run([_tool("ruff"), "check", "src", "tests", "bench", "scripts"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]


def test_mypy_is_clean():
    out = subprocess.run([_tool("mypy")], cwd=ROOT, capture_output=True, text=True)  # files and options: [tool.mypy]
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]


def test_no_function_is_too_complex_and_no_module_too_long():
    from radon.complexity import cc_visit

    complex_ = []
    long_ = []
    for path in sorted(SRC.rglob("*.py")):
        text = path.read_text()
        lines = text.count("\n")
        if lines > MAX_MODULE_LINES:
            long_.append(f"{path.relative_to(ROOT)}: {lines} lines")
        for block in cc_visit(text):
            if block.complexity > MAX_COMPLEXITY:
                complex_.append(f"{path.relative_to(ROOT)}:{block.lineno} {block.fullname}: {block.complexity}")
    assert not complex_, f"functions above complexity {MAX_COMPLEXITY} (radon): {complex_}"
    assert not long_, f"modules over {MAX_MODULE_LINES} lines: {long_}"


HEAVY = ("rouge_score", "nltk", "sacrebleu", "sklearn", "scipy", "statsmodels", "openai")


@pytest.mark.parametrize(("code", "also_heavy"), [
    # `mergegate --help`: not even pydantic, numpy, jinja2 or httpx
    ("import mergegate.cli", ("numpy", "pydantic", "jinja2", "httpx")),
    # `mergegate comment`: results, report and the GitHub client, no scorer and no model client
    ("from mergegate.results import RunResults; from mergegate.report import render_markdown; import mergegate.github", ()),
], ids=["cli", "comment"])
def test_light_commands_import_nothing_heavy(code, also_heavy):
    # checked by what is imported, not by a clock: a timing assertion would depend on the machine's load
    probe = f"import sys; {code}; print([m for m in {HEAVY + also_heavy!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_the_api_reference_is_up_to_date():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "api_docs.py"), "--check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_the_check_reference_is_up_to_date():
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "check_docs.py"), "--check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_the_public_api_is_importable_from_the_package():
    import mergegate

    for name in mergegate.__all__:
        assert getattr(mergegate, name) is not None, name
    assert mergegate.load_results.__module__ == "mergegate.results.io"


def test_the_readme_names_every_package_and_module_of_src():
    """The architecture table ("Where things are") matches src/: a new package is described where newcomers look."""
    readme = (ROOT / "README.md").read_text()
    table = readme.split("## Where things are", 1)[1].split("## Tests", 1)[0]
    src = ROOT / "src" / "mergegate"
    missing = [p.name for p in sorted(src.iterdir())
               if (p.is_dir() and (p / "__init__.py").exists() and f"src/mergegate/{p.name}/" not in table)
               or (p.suffix == ".py" and p.name != "__init__.py" and p.name not in table)]
    assert not missing, f"not in the README's architecture table: {missing}"
