"""Every example is a command: ``--help`` explains each flag, a bad flag exits with status 2 and a
one-line message (no traceback), and the README's Examples section documents it."""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p for p in (REPO / "examples").glob("*.py") if not p.name.startswith("_"))
NAMES = [p.stem for p in EXAMPLES]


def _load(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_examples_are_all_here():
    assert NAMES == ["char_transformer", "layer_stack_mlp", "lstm_echo", "train_digits",
                     "vae_digits"]


@pytest.mark.parametrize("path", EXAMPLES, ids=NAMES)
def test_help_explains_every_flag(path, capsys):
    module = _load(path)
    with pytest.raises(SystemExit) as exc:
        module.main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: {path.stem} ")
    flags = [a for a in module.build_parser()._actions if a.option_strings != ["-h", "--help"]]
    assert len(flags) >= 4
    for action in flags:
        assert action.help, f"{path.name}: {action.option_strings} has no help"
        assert action.option_strings[0] in text
    assert "--steps" in text and "--seed" in text


@pytest.mark.parametrize("path", EXAMPLES, ids=NAMES)
def test_bad_flag_exits_with_status_2_and_one_message(path, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        _load(path).main(["--steps", "many"])
    assert exc.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert lines[0].startswith(f"usage: {path.stem} ")
    assert lines[-1] == (f"{path.stem}: error: argument --steps: expected an integer, "
                         "got 'many'")
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_bad_flag_from_the_shell(tmp_path):
    """The main job run as a script: exit status 2, argparse's message, no traceback. (One
    subprocess: every example parses its flags with the same examples/_cli.py helpers, checked
    in-process above; each subprocess costs seconds of importing JAX.)"""
    path = REPO / "examples" / "train_digits.py"
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, str(path), "--steps", "many"], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=300)
    assert run.returncode == 2
    assert run.stdout == ""
    lines = run.stderr.strip().splitlines()
    assert lines[0].startswith("usage: train_digits ")
    assert lines[-1] == ("train_digits: error: argument --steps: expected an integer, "
                         "got 'many'")
    assert "Traceback" not in run.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_readme_documents_every_example():
    readme = (REPO / "README.md").read_text()
    section = re.search(r"^## Examples\n(.*?)^## ", readme, re.DOTALL | re.MULTILINE)
    assert section, "README.md has no '## Examples' section followed by another section"
    for name in NAMES:
        assert f"examples/{name}.py" in section.group(1), f"README does not document {name}"
