"""Tests of examples/vae_digits.py (a brief run, in process, through its ``main``)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "vae_digits.py"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _load_example():
    spec = importlib.util.spec_from_file_location("vae_digits", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


vd = _load_example()


def test_brief_run(tmp_path):
    # One test, not several sharing a fixture: pytest-xdist would run the fixture once per worker.
    brief_run = vd.main(["--steps", "300", "--batch-size", "64", "--latent-size", "4",
                         "--out", str(tmp_path)])
    _check_loss_falls_and_likelihood_beats_the_baseline(brief_run)
    _check_picture(brief_run)
    _check_parameter_tree(brief_run)
    _check_noise_comes_from_the_key(brief_run)


def _check_loss_falls_and_likelihood_beats_the_baseline(brief_run):
    losses = np.asarray(brief_run["losses"])
    assert losses.shape == (300,) and np.all(np.isfinite(losses))
    # 64 pixels at p = 0.5 cost 64 log 2 = 44 nats; training must go well below.
    assert losses[:5].mean() > 35
    assert losses[-20:].mean() < 0.6 * losses[:5].mean()
    baseline = brief_run["baseline_nll"]
    assert 20 < baseline < 30
    # The negative ELBO bounds the VAE's negative log-likelihood from above, so beating the
    # baseline's exact likelihood with it is conclusive.
    assert brief_run["test_neg_elbo"] < baseline - 2


def _check_picture(brief_run):
    with open(brief_run["plot_path"], "rb") as f:
        assert f.read(8) == PNG_MAGIC


def _check_parameter_tree(brief_run):
    shapes = {m: {n: np.shape(v) for n, v in b.items()} for m, b in brief_run["params"].items()}
    assert shapes == {
        "vae/~/encoder/~/linear_0": {"w": (64, 128), "b": (128,)},
        "vae/~/encoder/~/linear_1": {"w": (128, 64), "b": (64,)},
        "vae/~/encoder/~/linear_2": {"w": (64, 8), "b": (8,)},  # mean and log-std of 4 latents
        "vae/~/decoder/~/linear_0": {"w": (4, 64), "b": (64,)},
        "vae/~/decoder/~/linear_1": {"w": (64, 128), "b": (128,)},
        "vae/~/decoder/~/linear_2": {"w": (128, 64), "b": (64,)},
    }


def _check_noise_comes_from_the_key(brief_run):
    import jax

    elbo, generate = vd.make_model(4).apply
    x = vd.load_data()[1][:4]
    a, _ = elbo(brief_run["params"], jax.random.PRNGKey(0), x)
    b, _ = elbo(brief_run["params"], jax.random.PRNGKey(0), x)
    c, _ = elbo(brief_run["params"], jax.random.PRNGKey(1), x)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    samples = generate(brief_run["params"], jax.random.PRNGKey(2), 3)
    assert samples.shape == (3, 64)
    assert 0 <= float(samples.min()) and float(samples.max()) <= 1
    with pytest.raises(ValueError, match="rng"):
        elbo(brief_run["params"], None, x)


def test_baseline_is_the_mean_image_likelihood():
    train = np.array([[1, 0], [1, 1], [1, 0], [0, 0]], np.float32)
    test = np.array([[1, 1]], np.float32)
    p = np.array([0.75, 0.25])
    assert vd.mean_image_nll(train, test) == pytest.approx(-np.log(p).sum(), rel=1e-5)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--steps", "-1"], "argument --steps: must be >= 1, got -1"),
        (["--batch-size", "2000"], "argument --batch-size: must be <= 1437"),
        (["--latent-size", "0"], "argument --latent-size: must be >= 1, got 0"),
        (["--learning-rate", "-3"], "argument --learning-rate: must be a finite number > 0"),
        (["--beta", "2"], "unrecognized arguments: --beta 2"),
    ],
)
def test_bad_flags_exit_2_with_message(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        vd.main([*argv, "--out", str(tmp_path / "out")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "usage: vae_digits" in err
    assert message in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()
