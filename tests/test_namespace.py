"""The suite is one package, ``ipbench``: none of its folders is importable under a generic name (its
``datasets`` does not shadow Hugging Face's, installed beside it by the test extra), and a job runs the code
of the checkout whose Snakefile planned it (``rules/launch.py``)."""
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ["physics", "priors", "methods", "baselines", "datasets", "metrics", "report", "suite"]


def run(code: str, cwd) -> str:
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize("cwd", ["elsewhere", "checkout"])
def test_no_folder_of_the_suite_is_a_top_level_module(tmp_path, cwd):
    where = tmp_path if cwd == "elsewhere" else ROOT
    flag = ["-P"] if cwd == "checkout" else []      # as the jobs run: the checkout's folders kept off sys.path
    out = subprocess.run([sys.executable, *flag, "-c", "import importlib.util, json; print(json.dumps("
                          f"{{n: getattr(importlib.util.find_spec(n), 'origin', None) for n in {FOLDERS!r}}}))"],
                         cwd=where, capture_output=True, text=True, check=True).stdout
    import json
    found = json.loads(out)
    assert all(origin is None or "site-packages" in origin for origin in found.values()), found
    assert found["datasets"] and "site-packages" in found["datasets"]          # Hugging Face's, not the suite's
    assert not any(Path(origin).parent.parent == ROOT for origin in found.values() if origin)


def test_hugging_face_sees_its_own_datasets_and_the_suite_imports_beside_it(tmp_path):
    out = run("import datasets, transformers.utils as u, ipbench.datasets as d, ipbench.suite.config as c; "
              "print(datasets.__version__, u.is_datasets_available(), d.digits.__module__, c.ROOT)", tmp_path)
    version, available, digits_module, root = out.split()
    assert version[0].isdigit() and available == "True"
    assert digits_module == "ipbench.datasets.embedded" and root == str(ROOT)


def test_a_job_runs_the_code_of_its_own_checkout(tmp_path):
    """A copy of the launcher in another checkout imports ``ipbench`` from that checkout, not the installed one."""
    other = tmp_path / "other_checkout"
    (other / "rules").mkdir(parents=True)
    shutil.copy(ROOT / "rules" / "launch.py", other / "rules" / "launch.py")
    (other / "__init__.py").write_text("")
    (other / "where.py").write_text("import ipbench, sys\nprint(ipbench.__file__, *sys.argv[1:])\n")
    out = subprocess.run([sys.executable, "-P", str(other / "rules" / "launch.py"), "ipbench.where", "--x", "1"],
                         cwd=tmp_path, capture_output=True, text=True, check=True).stdout.split()
    assert out == [str(other / "__init__.py"), "--x", "1"]
    assert importlib.util.find_spec("ipbench").origin == str(ROOT / "__init__.py")      # the installed one is this


def test_the_command_line_runs_as_a_module_and_a_script(tmp_path):
    for cmd in ([sys.executable, "-m", "ipbench", "--help"], [shutil.which("ipbench") or "ipbench", "--help"]):
        out = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, check=True).stdout
        assert "degrade" in out and "solve" in out
