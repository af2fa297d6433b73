"""The import contracts between the parts (pyproject.toml ``[tool.importlinter]``,
docs/architecture.md "Parts and allowed imports"): the command domain does no I/O, the
shared package imports no service, services never import each other, the ingest loads
no geometry library. ``make lint`` runs the same check (``lint-imports``)."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from typing import Any

from wuwang.settings import REPO_ROOT

# In a child process started in the repository, so the code analysed is this checkout's
# (the configuration is read from ./pyproject.toml) and no cache is written.
_LINT = (
    "import sys; from importlinter.cli import lint_imports;"
    " sys.exit(lint_imports(no_cache=True, no_logo=True))"
)


def _config() -> Any:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_import_contracts_are_kept() -> None:
    path = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    done = subprocess.run(
        [sys.executable, "-c", _LINT],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout, done.stdout


def test_every_shipped_package_is_bound_by_the_contracts() -> None:
    """A new service (or a harness put into the wheel) cannot slip past the contracts."""
    tool = _config()["tool"]
    shipped = {p.rstrip("*") for p in tool["setuptools"]["packages"]["find"]["include"]}
    assert "testkit" not in shipped  # the harness stays out of the product
    linter = tool["importlinter"]
    assert set(linter["root_packages"]) == shipped
    contracts = linter["contracts"]
    independent = [c for c in contracts if c["type"] == "independence"]
    assert [set(c["modules"]) for c in independent] == [shipped - {"wuwang"}]
    shared = [c for c in contracts if c.get("source_modules") == ["wuwang"]]
    assert [set(c["forbidden_modules"]) for c in shared] == [shipped - {"wuwang"}]
