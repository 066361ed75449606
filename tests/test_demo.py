"""The demo's two pull requests: suites as scripts/demo_suites.py writes them, configs that differ in the adapter only."""

import subprocess
import sys
from pathlib import Path

import yaml

from mergegate.config import load_config
from mergegate.suites import discover_suites

REPO = Path(__file__).resolve().parents[1]


def test_the_committed_demo_suites_are_what_the_script_writes():
    # BFCL's eval split comes from the installed bfcl-eval: a new release or a changed split shows here
    done = subprocess.run([sys.executable, "scripts/demo_suites.py", "--check"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_forgetful_story_changes_the_adapter_and_nothing_else():
    good = yaml.safe_load((REPO / "mergegate.yaml").read_text())
    forgetful = yaml.safe_load((REPO / "mergegate.forgetful.yaml").read_text())
    assert (good["models"]["candidate"].pop("adapter"), forgetful["models"]["candidate"].pop("adapter")) == (
        "adapters/good", "adapters/forgetful")
    assert (good.pop("output_dir"), forgetful.pop("output_dir")) == ("results", "results-forgetful")
    assert good == forgetful


def test_the_demo_config_gates_on_the_powered_suites_only():
    loaded = load_config(REPO / "mergegate.yaml", REPO)
    suites = {ls.name: ls for ls in discover_suites([loaded.resolve(loaded.config.suites_dir)])}
    assert set(suites) == {"bfcl_simple", "arithmetic", "comparisons"}
    assert [s for s in suites if suites[s].suite.role == "target"] == ["bfcl_simple"]
    assert all(len(ls.suite.cases) >= 100 for ls in suites.values())


def test_no_eval_case_is_in_the_adapters_training_data():
    done = subprocess.run([str(Path(sys.executable).parent / "mergegate"), "contamination", "--train",
                           "adapters/bfcl_simple.train.jsonl", "--config", "mergegate.yaml"], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "CONTAMINATED" not in done.stdout and "0 / 106" in done.stdout, done.stdout
