"""Tests of the main job, examples/train_digits.py (run in-process through its ``main``)."""

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "train_digits.py"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _load_example():
    spec = importlib.util.spec_from_file_location("train_digits", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


td = _load_example()


def test_short_run(tmp_path):
    # One test, not several sharing a fixture: pytest-xdist would run the fixture once per worker.
    metrics = td.main(["--steps", "150", "--batch-size", "64", "--seed", "3",
                       "--out", str(tmp_path)])
    short_run = tmp_path, metrics
    _check_short_run_learns(short_run)
    _check_short_run_outputs(short_run)
    _check_saved_params_reload_identically(short_run)


def _check_short_run_learns(short_run):
    _, metrics = short_run
    losses = np.asarray(metrics["losses"])
    assert losses.shape == (150,)
    assert np.all(np.isfinite(losses))
    # Cross-entropy of 10 classes starts near log(10) = 2.3 and must fall well below it.
    assert losses[:10].mean() > 1.5
    assert losses[-10:].mean() < 0.5 * losses[:10].mean()
    # A constant guess scores about 0.1; 150 steps already classify most digits.
    assert metrics["test_accuracy"] > 0.5
    assert metrics["eval_steps"][-1] == 150
    assert metrics["eval_accuracies"][-1] == metrics["test_accuracy"]


def _check_short_run_outputs(short_run):
    out, metrics = short_run
    assert metrics["params_path"] == os.path.join(str(out), "params.npz")
    assert metrics["plot_path"] == os.path.join(str(out), "training_curves.png")
    with open(metrics["plot_path"], "rb") as f:
        assert f.read(8) == PNG_MAGIC
    assert os.path.getsize(metrics["plot_path"]) > 10_000


def _check_saved_params_reload_identically(short_run):
    _, metrics = short_run
    params = metrics["params"]
    shapes = {m: {n: np.shape(v) for n, v in b.items()} for m, b in params.items()}
    assert shapes == {
        "conv_net/conv2_d": {"w": (3, 3, 1, 16), "b": (16,)},
        "conv_net/conv2_d_1": {"w": (3, 3, 16, 32), "b": (32,)},
        "conv_net/linear": {"w": (128, 64), "b": (64,)},
        "conv_net/linear_1": {"w": (64, 10), "b": (10,)},
    }
    assert metrics["num_params"] == sum(
        int(np.prod(s)) for bundle in shapes.values() for s in bundle.values()) == 13_706
    with np.load(metrics["params_path"]) as data:
        assert sorted(data.files) == sorted(f"{m}/{n}" for m, b in params.items() for n in b)
    reloaded = td.load_params(metrics["params_path"])
    assert reloaded.keys() == params.keys()
    for module, bundle in params.items():
        assert reloaded[module].keys() == bundle.keys()
        for name, value in bundle.items():
            got = np.asarray(reloaded[module][name])
            assert got.dtype == np.float32
            np.testing.assert_array_equal(got, value)
    assert metrics["reloaded_accuracy"] == metrics["test_accuracy"]


def test_save_load_round_trip(tmp_path):
    params = {
        "a/~/b": {"w": np.arange(6, dtype=np.float32).reshape(2, 3)},
        "~": {"scale": np.array(2.5, np.float32), "count": np.array([1, 2], np.int32)},
    }
    path = str(tmp_path / "p.npz")
    td.save_params(params, path)
    reloaded = td.load_params(path)
    assert reloaded.keys() == params.keys()
    for module, bundle in params.items():
        for name, value in bundle.items():
            assert reloaded[module][name].dtype == value.dtype
            np.testing.assert_array_equal(np.asarray(reloaded[module][name]), value)


def test_default_training_reaches_97_percent(tmp_path):
    # CPU time of this process (all its threads), not wall time: steady on a busy machine.
    start = time.process_time()
    metrics = td.main(["--out", str(tmp_path)])
    seconds = time.process_time() - start
    assert len(metrics["losses"]) == 1000
    assert metrics["test_accuracy"] >= 0.97
    assert metrics["reloaded_accuracy"] == metrics["test_accuracy"]
    assert seconds < 120, f"the default job took {seconds:.1f} s of CPU"


def test_summary_table():
    # That main prints it is checked by test_command_line.
    model = td.hk.without_apply_rng(td.hk.transform(td.forward))
    table = td.summary(model, np.zeros([1, 8, 8, 1], np.float32))
    for text in ("conv_net/conv2_d (Conv2D)", "conv_net/max_pool (MaxPool)",
                 "conv_net/flatten (Flatten)", "conv_net/linear_1 (Linear)", "w: f32[3,3,16,32]",
                 "f32[1,2,2,32]", "13,706"):
        assert text in table


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--steps", "-3"], "argument --steps: must be >= 1, got -3"),
        (["--steps", "0"], "argument --steps: must be >= 1, got 0"),
        (["--steps", "ten"], "argument --steps: expected an integer, got 'ten'"),
        (["--batch-size", "0"], "argument --batch-size: must be >= 1, got 0"),
        (["--batch-size", "5000"], "argument --batch-size: must be <= 1437"),
        (["--learning-rate", "0"], "argument --learning-rate: must be a finite number > 0"),
        (["--learning-rate", "nan"], "argument --learning-rate: must be a finite number > 0"),
        (["--learning-rate", "fast"], "argument --learning-rate: expected a number"),
        (["--seed", "-1"], "argument --seed: must be >= 0, got -1"),
        (["--epochs", "3"], "unrecognized arguments: --epochs 3"),
    ],
)
def test_bad_flags_exit_2_with_message(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        td.main([*argv, "--out", str(tmp_path / "out")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "usage: train_digits" in err
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_out_that_is_a_file_is_rejected(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("x")
    with pytest.raises(SystemExit) as exc:
        td.main(["--out", str(target)])
    assert exc.value.code == 2
    assert "argument --out: " in capsys.readouterr().err


def test_help_explains_every_flag(capsys):
    with pytest.raises(SystemExit) as exc:
        td.main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--steps", "--batch-size", "--learning-rate", "--seed", "--out"):
        assert flag in text
    assert "default: 1000" in text


def test_command_line(tmp_path):
    """The file runs as a script (``python examples/train_digits.py``), from any folder."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run([sys.executable, str(EXAMPLE), "--steps", "30", "--out", "run"],
                         capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "held-out accuracy:" in run.stdout
    assert "conv_net/conv2_d (Conv2D)" in run.stdout  # the model summary
    assert "30/30" in run.stderr  # the progress bar
    assert (tmp_path / "run" / "params.npz").is_file()
    assert (tmp_path / "run" / "training_curves.png").is_file()


def test_runs_unchanged_with_haiku(tmp_path):
    """The example is Haiku code: with dm-haiku standing in for senryu it runs and learns."""
    code = ("import runpy, sys, haiku; sys.modules['senryu'] = haiku; "
            f"sys.argv = ['train_digits', '--steps', '40', '--out', 'run']; "
            f"runpy.run_path({str(EXAMPLE)!r}, run_name='__main__')")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "conv_net/conv2_d (Conv2D)" in run.stdout
    accuracy = float(run.stdout.split("held-out accuracy: ")[1].split()[0])
    assert accuracy > 0.3
