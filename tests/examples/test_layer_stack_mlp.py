"""Tests of examples/layer_stack_mlp.py (a brief run, in process, through its ``main``)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "layer_stack_mlp.py"


def _load_example():
    spec = importlib.util.spec_from_file_location("layer_stack_mlp", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ls = _load_example()


def test_brief_run():
    # One test, not several sharing a fixture: pytest-xdist would run the fixture once per worker.
    brief_run = ls.main(["--steps", "150", "--batch-size", "64", "--num-layers", "3", "--width",
                         "32", "--compare-compile-time"])
    _check_loss_falls_and_accuracy_beats_chance(brief_run)
    _check_stacked_parameters_have_a_layer_axis(brief_run)
    _check_compile_times_reported(brief_run)


def _check_loss_falls_and_accuracy_beats_chance(brief_run):
    losses = np.asarray(brief_run["losses"])
    assert losses.shape == (150,) and np.all(np.isfinite(losses))
    assert losses[:5].mean() > 1.5  # about log(10) = 2.3 at the start
    assert losses[-10:].mean() < 0.3 * losses[:5].mean()
    assert 0.1 < brief_run["chance_accuracy"] < 0.11
    assert brief_run["test_accuracy"] > 0.85


def _check_stacked_parameters_have_a_layer_axis(brief_run):
    shapes = {m: {n: np.shape(v) for n, v in b.items()} for m, b in brief_run["params"].items()}
    assert shapes == {
        "embed": {"w": (64, 32), "b": (32,)},
        "blocks/layer_norm": {"scale": (3, 32), "offset": (3, 32)},
        "blocks/linear": {"w": (3, 32, 128), "b": (3, 128)},
        "blocks/linear_1": {"w": (3, 128, 32), "b": (3, 32)},
        "final_norm": {"scale": (32,), "offset": (32,)},
        "logits": {"w": (32, 10), "b": (10,)},
    }


def _check_compile_times_reported(brief_run):
    times = brief_run["compile_seconds"]
    assert set(times) == {"layer_stack", "python_loop"}
    assert all(t > 0 for t in times.values())


def test_stack_equals_the_python_loop():
    """With the stacked parameters sliced per layer, the Python-loop network computes the same."""
    import jax
    import senryu as hk

    stacked = hk.without_apply_rng(hk.transform(lambda x: ls.forward(x, 3, 8)))
    looped = hk.without_apply_rng(hk.transform(lambda x: ls.forward(x, 3, 8, stacked=False)))
    x = np.random.default_rng(0).normal(size=[5, 64]).astype(np.float32)
    params = jax.jit(stacked.init)(jax.random.PRNGKey(0), x)
    # Give the last linear of each block non-zero weights, so that every block matters.
    params["blocks/linear_1"]["w"] = 0.1 * jax.random.normal(jax.random.PRNGKey(1), [3, 32, 8])
    names = {"layer_norm": ["layer_norm", "layer_norm_1", "layer_norm_2"],
             "linear": ["linear", "linear_2", "linear_4"],
             "linear_1": ["linear_1", "linear_3", "linear_5"]}
    unstacked = {k: v for k, v in params.items() if not k.startswith("blocks/")}
    for stacked_name, per_layer in names.items():
        for i, name in enumerate(per_layer):
            unstacked[name] = {p: v[i] for p, v in params[f"blocks/{stacked_name}"].items()}
    assert jax.tree_util.tree_structure(unstacked) == jax.tree_util.tree_structure(
        jax.eval_shape(looped.init, jax.random.PRNGKey(0), x))
    np.testing.assert_allclose(jax.jit(stacked.apply)(params, x),
                               jax.jit(looped.apply)(unstacked, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--steps", "0"], "argument --steps: must be >= 1, got 0"),
        (["--num-layers", "zero"], "argument --num-layers: expected an integer, got 'zero'"),
        (["--width", "0"], "argument --width: must be >= 1, got 0"),
        (["--batch-size", "1438"], "argument --batch-size: must be <= 1437"),
        (["--compare-compile-time=yes"],
         "argument --compare-compile-time: ignored explicit argument"),
    ],
)
def test_bad_flags_exit_2_with_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        ls.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "usage: layer_stack_mlp" in err
    assert message in err
    assert "Traceback" not in err
