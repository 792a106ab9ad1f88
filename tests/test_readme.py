"""The README documents every setting and the two commands CI and newcomers rely on."""

from __future__ import annotations

from pathlib import Path

from contract.settings import Settings

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_in_the_readme_table() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in Settings.model_fields if f"`LOCKSTEP_{name.upper()}`" not in readme]
    assert missing == [], f"README settings table lacks {missing}"


def test_ci_runs_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make demo" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
