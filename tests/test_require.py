"""tests/require.py: a missing tool skips a local run and fails a CI run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import require

ROOT = Path(__file__).parents[1]
ABSENT = "phono-no-such-tool-7f3a"


@pytest.mark.parametrize("ci", ["true", None, "false", "1"])
def test_missing_tool_skips_locally_and_fails_under_ci(monkeypatch: pytest.MonkeyPatch,
                                                       ci: str | None) -> None:
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    outcome = pytest.fail.Exception if ci == "true" else pytest.skip.Exception
    for call in (lambda: require.require_tool(ABSENT),
                 lambda: require.require_tool(f"/nonexistent/{ABSENT}"),
                 lambda: require.require_module("phono_no_such_module_7f3a"),
                 lambda: require.missing("a second filesystem")):
        with pytest.raises(outcome) as exc:
            call()
        assert ci != "true" or "required under CI=true" in str(exc.value)


def test_present_tool_and_module_are_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    assert Path(require.require_tool("sh")).name == "sh"
    assert require.require_tool(sys.executable) == sys.executable
    assert require.require_module("sqlite3").__name__ == "sqlite3"


_PROBE = f"""
from tests.require import require_tool

def test_needs_a_tool():
    require_tool("{ABSENT}")
"""


@pytest.mark.parametrize("ci,code,word", [("true", 1, "1 failed"), ("", 0, "1 skipped")])
def test_a_whole_run_is_red_under_ci(tmp_path: Path, ci: str, code: int, word: str) -> None:
    """The real thing: pytest's exit status for a test whose tool is missing (a bare
    pytest in tmp_path, without the project's plugins and conftest, to start fast)."""
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_probe.py").write_text(_PROBE)
    env = {**os.environ, "CI": ci, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                          "test_probe.py"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120, env=env)
    assert out.returncode == code, out.stdout + out.stderr
    assert word in out.stdout


# A test may skip only through tests/require.py (so CI=true turns it into a failure),
# except for conditions CI cannot fix by installing something.
_ALLOWED = {
    ("tests/torrent/test_real_client.py", "pytest.skip(\"aria2 < 1.37"),  # a version's bug
}
_SKIPS = re.compile(r"pytest\.skip\(|pytest\.importorskip\(|\.skipif\(|shutil\.which\(")


def test_every_skip_for_a_missing_requirement_goes_through_require() -> None:
    found = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in ("tests/require.py", "tests/test_require.py") or rel.startswith("tests/data/"):
            continue
        for line in path.read_text().splitlines():
            if _SKIPS.search(line) and not any(rel == f and s in line for f, s in _ALLOWED):
                found.append(f"{rel}: {line.strip()}")
    assert found == []
