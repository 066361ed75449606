"""`mergegate run --shard i/n` + `mergegate merge` give the same result as one unsharded run (demo suites, real server)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import make_demo_project


def mergegate(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITHUB_")}
    return subprocess.run([sys.executable, "-m", "mergegate.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=600, env=env)


@pytest.fixture(scope="module")
def sharded(llama, demo_cache, tmp_path_factory):
    """Run the demo as shards 1/3..3/3, merge them, and run it unsharded; return the project folder."""
    root = make_demo_project(tmp_path_factory.mktemp("shards"), llama, demo_cache)
    for i in (1, 2, 3):
        out = mergegate("run", "--shard", f"{i}/3", "--output", f"shard-{i}", "--", "--mergegate-no-progress", cwd=root)
        assert out.returncode == 0, out.stdout + out.stderr
    merged = mergegate("merge", "shard-1", "shard-2", "shard-3", "--output", "merged", cwd=root)
    full = mergegate("run", "--output", "full", "--", "--mergegate-no-progress", cwd=root)
    return root, merged, full


def _load(path: Path) -> dict:
    return json.loads(path.read_text())


def _comparable(run: dict) -> dict:
    """Return the parts of results.json that must not depend on sharding."""
    cases = []
    for c in run["cases"]:
        c = json.loads(json.dumps(c))
        for role in ("candidate", "baseline"):
            for k in ("cached", "attempts"):  # the shards generated; the full run came from their cache
                c[role]["generation"].pop(k)
        cases.append(c)
    return {k: run[k] for k in ("verdict", "exit_code", "reasons", "suites", "categories", "gates")} | {"cases": cases}


def test_shards_partition_the_cases(sharded):
    root, _, full = sharded
    shards = [_load(root / f"shard-{i}" / "results.json") for i in (1, 2, 3)]
    ids = [(c["suite"], c["id"]) for s in shards for c in s["cases"]]
    assert len(ids) == len(set(ids))  # disjoint
    assert sorted(ids) == sorted((c["suite"], c["id"]) for c in _load(root / "full" / "results.json")["cases"])  # complete
    assert max(len(s["cases"]) for s in shards) - min(len(s["cases"]) for s in shards) <= 1  # balanced
    for i, s in enumerate(shards, 1):
        assert s["verdict"] == "PENDING" and s["gates"] == [] and s["meta"]["shard"] == {"index": i, "total": 3}


def test_merged_equals_unsharded(sharded):
    root, merged, full = sharded
    assert merged.returncode == full.returncode, merged.stdout[-3000:]
    m, f = _load(root / "merged" / "results.json"), _load(root / "full" / "results.json")
    assert f["generation"]["requests_sent"] == 0  # the full run was served from the shards' cache: same outputs
    assert len(m["gates"]) >= 5
    assert _comparable(m) == _comparable(f)
    assert m["generation"]["requests_sent"] == sum(_load(root / f"shard-{i}" / "results.json")["generation"]["requests_sent"]
                                                   for i in (1, 2, 3))
    assert len(m["meta"]["merged_from"]) == 3


def test_a_missing_shard_is_incomplete(sharded):
    root, _, _ = sharded
    out = mergegate("merge", "shard-1", "shard-3", "--output", "partial", cwd=root)
    assert out.returncode == 2
    run = _load(root / "partial" / "results.json")
    assert run["verdict"] == "INCOMPLETE" and any("shard 2/3 is missing" in r for r in run["reasons"])


def test_shards_of_different_configs_do_not_merge(sharded, tmp_path):
    root, _, _ = sharded
    other = json.loads((root / "shard-2" / "results.json").read_text())
    other["meta"]["config_sha256"] = "f" * 64
    bad = tmp_path / "results.json"
    bad.write_text(json.dumps(other))
    out = mergegate("merge", str(root / "shard-1" / "results.json"), str(bad), str(root / "shard-3"), "--output", "x", cwd=root)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert out.stderr.strip().count("\n") == 0 and "different config" in out.stderr and str(bad) in out.stderr


def test_bad_shard_argument_is_one_line(tmp_path):
    out = mergegate("run", "--shard", "4/3", cwd=tmp_path)
    assert out.returncode == 2 and out.stderr.strip() == "mergegate: error: --shard 4/3: INDEX must be between 1 and TOTAL"
