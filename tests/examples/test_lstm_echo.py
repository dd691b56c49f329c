"""Tests of examples/lstm_echo.py (a brief run, in process, through its ``main``)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "lstm_echo.py"


def _load_example():
    spec = importlib.util.spec_from_file_location("lstm_echo", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


le = _load_example()


def test_brief_run():
    # One test, not several sharing a fixture: pytest-xdist would run the fixture once per worker.
    brief_run = le.main(["--steps", "200", "--batch-size", "32", "--length", "12", "--delay", "2",
                         "--hidden-size", "32", "--seed", "1"])
    _check_loss_falls_and_accuracy_beats_chance(brief_run)
    _check_parameter_tree(brief_run)


def _check_loss_falls_and_accuracy_beats_chance(brief_run):
    losses = np.asarray(brief_run["losses"])
    assert losses.shape == (200,) and np.all(np.isfinite(losses))
    # Cross-entropy over 8 symbols starts near log(8) = 2.08.
    assert losses[:5].mean() > 1.8
    assert losses[-10:].mean() < 0.3 * losses[:5].mean()
    assert brief_run["chance_accuracy"] == 1 / 8
    # Without memory a model cannot beat chance (0.125); the LSTM echoes most symbols.
    assert brief_run["test_accuracy"] > 0.8


def _check_parameter_tree(brief_run):
    shapes = {m: {n: np.shape(v) for n, v in b.items()} for m, b in brief_run["params"].items()}
    assert shapes == {
        "lstm/linear": {"w": (8 + 32, 4 * 32), "b": (4 * 32,)},  # [input, hidden] -> 4 gates
        "linear": {"w": (32, 8), "b": (8,)},
    }


def test_batch_and_targets():
    import jax

    symbols, targets = le.make_batch(jax.random.PRNGKey(0), batch_size=5, length=7, delay=3,
                                     num_symbols=4)
    assert symbols.shape == (7, 5) and targets.shape == (4, 5)
    assert 0 <= int(symbols.min()) and int(symbols.max()) < 4
    # The target at step t (t >= delay) is the symbol of step t - delay.
    np.testing.assert_array_equal(targets, symbols[:4])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--steps", "0"], "argument --steps: must be >= 1, got 0"),
        (["--delay", "20"], "argument --delay: must be < --length (20), got 20"),
        (["--delay", "0"], "argument --delay: must be >= 1, got 0"),
        (["--num-symbols", "1"], "argument --num-symbols: must be >= 2, got 1"),
        (["--hidden-size", "big"], "argument --hidden-size: expected an integer, got 'big'"),
        (["--learning-rate", "inf"], "argument --learning-rate: must be a finite number > 0"),
        (["--gru"], "unrecognized arguments: --gru"),
    ],
)
def test_bad_flags_exit_2_with_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        le.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "usage: lstm_echo" in err
    assert message in err
    assert "Traceback" not in err
