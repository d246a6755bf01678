"""The package's layers (pyproject.toml, [tool.importlinter]) hold: no module imports from a layer above its own,
and the solvers that share no code import none of each other."""
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def lint(config: Path):
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    return subprocess.run([exe, "--config", str(config), "--no-cache"], capture_output=True, text=True, cwd=ROOT)


def test_import_contracts_are_kept():
    out = lint(ROOT / "pyproject.toml")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert re.search(r"Contracts: 2 kept, 0 broken", out.stdout), out.stdout[-2000:]


def test_the_checker_sees_an_import_that_climbs(tmp_path):
    """The same contract with physics put above priors must break (priors import physics): the checker reads
    the code rather than passing whatever it is given."""
    text = (ROOT / "pyproject.toml").read_text()
    swapped = text.replace('"ipbench.priors",\n    "ipbench.metrics | ipbench.datasets | ipbench.physics",',
                           '"ipbench.physics",\n    "ipbench.priors",\n    "ipbench.metrics | ipbench.datasets",')
    assert swapped != text
    (tmp_path / "pyproject.toml").write_text(swapped)
    out = lint(tmp_path / "pyproject.toml")
    assert out.returncode != 0 and "ipbench.priors" in out.stdout and "BROKEN" in out.stdout, out.stdout[-2000:]
