"""A stand-in for a SLURM cluster on one machine: ``sbatch``, ``srun``, ``squeue``, ``sacct``, ``sinfo``,
``scancel`` and ``scontrol`` as the slurm executor plugin calls them.

``sbatch`` records its options (one JSON line per submission in ``$STANDIN_SLURM_DIR/submissions.jsonl``),
allocates a job id and runs the job's command in the background, in its own session, with ``SLURM_JOB_ID``
set; ``squeue`` / ``sacct`` report each job's state by job name; ``srun`` drops its options and runs the
command. ``$STANDIN_SLURM_FAIL`` (a substring of a job's command) makes the first such job end as NODE_FAIL
without running: a lost node, for the retry path. ``install(bin_dir, python)`` writes the commands.
"""
from __future__ import annotations

import fcntl
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

COMMANDS = ("sbatch", "srun", "squeue", "sacct", "sinfo", "scancel", "scontrol")


def submitted_rule(sub: dict) -> tuple[str, dict]:
    """The rule and wildcards of a recorded submission (its command's --target-jobs 'rule:key=value,...')."""
    rule, wildcards = re.search(r"--target-jobs '(\w+):([^']*)'", sub["command"]).groups()
    return rule, dict(kv.split("=", 1) for kv in wildcards.split(",") if kv)


def install(bin_dir: Path, python: str = sys.executable) -> Path:
    """Write the stand-in commands into ``bin_dir`` (to be put first on PATH)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name in COMMANDS:
        path = bin_dir / name
        path.write_text(f"#!/bin/sh\nexec {shlex.quote(python)} {shlex.quote(__file__)} {name} \"$@\"\n")
        path.chmod(0o755)
    return bin_dir


def _state() -> Path:
    root = Path(os.environ["STANDIN_SLURM_DIR"])
    (root / "jobs").mkdir(parents=True, exist_ok=True)
    return root


def _locked_update(path: Path, update):
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(path.read_text()) if path.exists() else {}
        out = update(data)
        path.write_text(json.dumps(data))
        return out


def _set(job: str, **fields):
    _locked_update(_state() / "jobs" / f"{job}.json", lambda d: d.update(fields))


def _options(args: list[str]) -> tuple[dict, str | None, list[str]]:
    """sbatch's options as {flag: value}, the --wrap command, and positional arguments."""
    opts, wrap, rest, i = {}, None, [], 0
    while i < len(args):
        a = args[i]
        if a.startswith("--wrap"):
            wrap = a.split("=", 1)[1] if "=" in a else args[i + 1]
            i += 1 if "=" in a else 2
            continue
        if a.startswith("--") and "=" in a:
            k, v = a.split("=", 1)
            opts[k] = v
        elif a.startswith("-") and a not in ("--parsable",) and i + 1 < len(args) and not args[i + 1].startswith("-"):
            opts[a] = args[i + 1]
            i += 1
        elif a.startswith("-"):
            opts[a] = True
        else:
            rest.append(a)
        i += 1
    return opts, wrap, rest


def sbatch(args: list[str]) -> int:
    opts, wrap, rest = _options(args)
    command = wrap if wrap is not None else sys.stdin.read() if rest[:1] == ["/dev/stdin"] else Path(rest[0]).read_text()
    root = _state()
    job = str(_locked_update(root / "counter.json", lambda d: d.update(n=d.get("n", 100) + 1) or d["n"]))
    with open(root / "submissions.jsonl", "a") as f:
        f.write(json.dumps({"job": job, "options": opts, "command": command}) + "\n")
    fail = os.environ.get("STANDIN_SLURM_FAIL")
    fails = _locked_update(root / "failed.json", lambda d: bool(fail) and fail in command and not d.get(fail)
                           and not d.update({fail: job}))
    _set(job, name=opts.get("--job-name") or opts.get("-J", ""), state="PENDING")
    if fails:
        _set(job, state="NODE_FAIL")
    else:
        log = str(opts.get("--output", "/dev/null")).replace("%j", job)
        Path(log).parent.mkdir(parents=True, exist_ok=True)
        subprocess.Popen([sys.executable, __file__, "_run", job, log], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                         env={**os.environ, "STANDIN_SLURM_COMMAND": command})
    print(job)
    return 0


def _run(job: str, log: str) -> int:
    _set(job, state="RUNNING", pid=os.getpid())
    env = {**os.environ, "SLURM_JOB_ID": job, "SLURM_JOBID": job}
    command = env.pop("STANDIN_SLURM_COMMAND")
    with open(log, "a") as out:
        rc = subprocess.run(["/bin/sh", "-c", command], stdout=out, stderr=subprocess.STDOUT, env=env).returncode
    _set(job, state="COMPLETED" if rc == 0 else "FAILED", exit_code=rc)
    return 0


def _jobs(name: str | None) -> list[tuple[str, str]]:
    out = []
    for path in sorted(_state().glob("jobs/*.json")):
        d = json.loads(path.read_text())
        if name is None or d.get("name") == name:
            out.append((path.stem, d["state"]))
    return out


def _value(args: list[str], flag: str) -> str | None:
    for i, a in enumerate(args):
        if a == flag and i + 1 < len(args):
            return args[i + 1]
        if a.startswith(flag + "="):
            return a.split("=", 1)[1]
    return None


def main(argv: list[str]) -> int:
    cmd, args = argv[0], argv[1:]
    if cmd == "sbatch":
        return sbatch(args)
    if cmd == "_run":
        return _run(*args)
    if cmd == "srun":                      # drop srun's own options (all given as -n1 or --flag=value)
        while args and args[0].startswith("-"):
            args = args[1:]
        os.execvp(args[0], args)
    if cmd in ("squeue", "sacct"):
        if cmd == "sacct" and "-o" in args:          # the plugin's account guess: no accounts here
            print("none")
            return 0
        for job, state in _jobs(_value(args, "--name")):
            print(f"{job}|{state}")
        return 0
    if cmd == "sinfo":
        print("cpu*\ngpu")
        return 0
    if cmd == "scontrol":
        print("MinJobAge = 300 sec")
        return 0
    if cmd == "scancel":
        for job in (a for a in args if not a.startswith("-")):
            d = json.loads((_state() / "jobs" / f"{job}.json").read_text())
            if d.get("pid"):
                try:
                    os.killpg(d["pid"], 15)
                except ProcessLookupError:
                    pass
            _set(job, state="CANCELLED")
        return 0
    print(f"stand-in SLURM: unknown command {cmd}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
