"""Training commands: a checkpoint's ``train.args`` as command-line tokens, and back from the command a card
records. Imports no torch (planning the DAG reads it)."""
from __future__ import annotations

import re

# where training modules of earlier versions of the suite live now (cards keep the command that ran)
MOVED = {"priors.train_digit_net": "training.digit_net", "priors.bridge_training": "training.bridge",
         **{f"priors.{m}": f"training.{m}" for m in ("pixel_ddpm", "autoencoder", "latent_dm", "lcm", "similarity",
                                                     "w2_embedding", "ram", "ud2m_distill")}}


def train_cli_tokens(args: dict) -> list[str]:
    """A checkpoint's ``train.args`` as the tokens of its training command: ``--key value`` per entry,
    ``--key`` alone for ``true`` (a switch such as ``bf16``), nothing for ``false``. Keys and values are
    checked first (``check_train_args``): they become arguments of a shell command."""
    check_train_args(args)
    out = []
    for k, v in args.items():
        if v is not False:
            out += [f"--{k.replace('_', '-')}"] + ([] if v is True else [str(v)])
    return out


def train_cli_args(args: dict) -> str:
    """``train_cli_tokens`` as one command-line string."""
    import shlex
    return " ".join(map(shlex.quote, train_cli_tokens(args)))


SAFE_VALUE = re.compile(r"^[A-Za-z0-9_.,/+-]+$")


def check_train_args(args: dict, where: str = "train.args") -> dict:
    """Keys are option names, values numbers, switches or plain names (letters, digits, ``_.,/+-``): nothing
    that a shell would read as more than one word or as a command."""
    for k, v in args.items():
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", str(k)):
            raise ValueError(f"{where}: {k!r} is not an option name (letters, digits, _)")
        if isinstance(v, bool) or isinstance(v, (int, float)):
            continue
        if not isinstance(v, str) or not SAFE_VALUE.match(v):
            raise ValueError(f"{where}: the value of {k!r}, {v!r}, is not a number, a switch or a plain name "
                             "(letters, digits and _.,/+- only)")
    return args


def train_spec_of(command: str) -> tuple[str, dict]:
    """(module, train.args) of a training command ``python -m MODULE --key value ... --switch``, the
    inverse of ``train_cli_args`` (``--out`` dropped: the retrain rule chooses it); numbers are parsed."""
    import shlex
    words = shlex.split(command)
    if words[1:2] != ["-m"] or len(words) < 3:
        raise ValueError(f"not a 'python -m MODULE ...' training command: {command!r}")
    module, words, args = words[2], words[3:], {}
    module = module.removeprefix("ipbench.")  # cards written before the suite's package name lack it
    module = "ipbench." + MOVED.get(module, module)
    while words:
        if not words[0].startswith("--"):
            raise ValueError(f"unexpected {words[0]!r} in the training command {command!r}")
        key, words = words[0][2:].replace("-", "_"), words[1:]
        if words and not words[0].startswith("--"):
            args[key], words = _number(words[0]), words[1:]
        else:
            args[key] = True
    args.pop("out", None)
    if not re.fullmatch(r"ipbench(\.[a-z_][a-z0-9_]*)+", module):
        raise ValueError(f"the training module {module!r} of {command!r} is not a module of the suite")
    return module, check_train_args(args, f"the training command {command!r}")


def _number(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def current_command(command: str) -> str:
    """A recorded training command with its module renamed to where that module lives now (``MOVED``)."""
    words = command.split(" ")
    if len(words) > 2 and words[1] == "-m":
        module = words[2].removeprefix("ipbench.")
        words[2] = "ipbench." + MOVED.get(module, module)
    return " ".join(words)
