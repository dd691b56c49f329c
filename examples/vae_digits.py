"""A variational autoencoder on scikit-learn's 8x8 digits, drawing its noise with hk.next_rng_key.

The encoder (an ``hk.nets.MLP``) maps an image to the mean and log standard deviation of a Gaussian
over ``--latent-size`` latent variables; a sample ``z = mean + std * noise`` (the noise comes from
``hk.next_rng_key()``, so ``apply`` takes a random key) goes through the decoder MLP to per-pixel
logits. The images are binarised (a pixel is on when its grey level is at least half of the
maximum) and scored with a Bernoulli likelihood (sigmoid cross-entropy); the loss is the negative
evidence lower bound (ELBO): reconstruction + KL(q(z|x) || N(0, I)).

The model is built with ``hk.multi_transform`` so that one set of parameters serves two functions:
``elbo`` for training and ``generate`` (decode draws from the prior) for the picture at the end.

It reports the held-out negative ELBO in nats per image (an upper bound on the negative
log-likelihood) next to a trivial baseline, the likelihood of a model that gives every pixel its
mean over the training set whatever the image, and writes
``<out>/vae_digits.png``: held-out digits, their reconstructions, and new samples.

Usage::

    python examples/vae_digits.py [--steps N] [--batch-size N] [--latent-size N]
        [--learning-rate LR] [--seed N] [--out DIR]
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
import time
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
import senryu as hk
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for the shared _cli.py
from _cli import int_at_least, positive_float  # noqa: E402

HIDDEN_SIZES = (128, 64)
NUM_PIXELS = 64
TEST_FRACTION = 0.2
SPLIT_SEED = 0


# --------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vae_digits",
        description=(
            "Train a variational autoencoder on scikit-learn's 8x8 digits (no download), report "
            "the held-out negative ELBO and draw reconstructions and samples."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--steps", type=int_at_least(1), default=1500,
                        help="number of optimisation steps (one mini-batch each)")
    parser.add_argument("--batch-size", type=int_at_least(1), default=128,
                        help="training images per step (at most 1437)")
    parser.add_argument("--latent-size", type=int_at_least(1), default=8,
                        help="number of latent variables")
    parser.add_argument("--learning-rate", type=positive_float, default=2e-3,
                        help="Adam learning rate")
    parser.add_argument("--seed", type=int_at_least(0), default=0,
                        help="seed for the initialisation, the mini-batches and the noise")
    parser.add_argument("--out", default="out",
                        help="folder for vae_digits.png (created if missing)")
    return parser


# --------------------------------------------------------------------------- data


def load_data() -> tuple[np.ndarray, np.ndarray]:
    """Returns (train, test) images flattened to 64 binary pixels (0. or 1.)."""
    digits = load_digits()
    x = (digits.data >= 8).astype(np.float32)  # grey levels go from 0 to 16
    x_train, x_test = train_test_split(x, test_size=TEST_FRACTION, random_state=SPLIT_SEED,
                                       stratify=digits.target)
    return x_train, x_test


def bernoulli_nll(logits: jax.Array, x: jax.Array) -> jax.Array:
    """Negative log-likelihood of binary pixels ``x``, summed over the pixels (nats)."""
    return optax.sigmoid_binary_cross_entropy(logits, x).sum(axis=-1)


def mean_image_nll(x_train: np.ndarray, x_test: np.ndarray) -> float:
    """The baseline: each pixel predicted by its training mean, whatever the image."""
    p = np.clip(x_train.mean(axis=0), 1e-3, 1 - 1e-3)
    logits = np.log(p) - np.log1p(-p)
    return float(bernoulli_nll(jnp.asarray(logits), jnp.asarray(x_test)).mean())


# --------------------------------------------------------------------------- model


class VAE(hk.Module):
    """Gaussian encoder, Bernoulli decoder, standard normal prior."""

    def __init__(self, latent_size: int, name: str | None = None):
        super().__init__(name=name)
        self.latent_size = latent_size
        self.encoder = hk.nets.MLP([*HIDDEN_SIZES, 2 * latent_size], name="encoder")
        self.decoder = hk.nets.MLP([*reversed(HIDDEN_SIZES), NUM_PIXELS], name="decoder")

    def elbo(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Per-image negative ELBO and reconstruction logits (one latent sample per image)."""
        mean, log_std = jnp.split(self.encoder(x), 2, axis=-1)
        std = jnp.exp(log_std)
        z = mean + std * jax.random.normal(hk.next_rng_key(), mean.shape)
        logits = self.decoder(z)
        kl = 0.5 * jnp.sum(mean**2 + std**2 - 1.0 - 2.0 * log_std, axis=-1)
        return bernoulli_nll(logits, x) + kl, logits

    def generate(self, num: int) -> jax.Array:
        """Pixel probabilities of ``num`` images decoded from draws of the prior."""
        z = jax.random.normal(hk.next_rng_key(), [num, self.latent_size])
        return jax.nn.sigmoid(self.decoder(z))


def make_model(latent_size: int) -> hk.MultiTransformed:
    def functions():
        vae = VAE(latent_size)

        def init(x):  # Runs both methods, so that init creates every parameter.
            return vae.elbo(x), vae.generate(1)

        return init, (vae.elbo, vae.generate)

    return hk.multi_transform(functions)


# --------------------------------------------------------------------------- plotting


def plot(originals: np.ndarray, reconstructions: np.ndarray, samples: np.ndarray,
         path: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [("held-out", originals), ("reconstructed", reconstructions), ("sampled", samples)]
    cols = len(originals)
    fig, axes = plt.subplots(len(rows), cols, figsize=(cols * 0.9, len(rows) * 1.1))
    for r, (title, images) in enumerate(rows):
        for c in range(cols):
            ax = axes[r, c]
            ax.imshow(images[c].reshape(8, 8), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


# --------------------------------------------------------------------------- training


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Trains and evaluates; returns the metrics. ``argv`` defaults to ``sys.argv[1:]``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    x_train, x_test = load_data()
    if args.batch_size > len(x_train):
        parser.error(f"argument --batch-size: must be <= {len(x_train)} (the size of the "
                     f"training split), got {args.batch_size}")
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        parser.error(f"argument --out: {args.out!r} exists and is not a folder")
    os.makedirs(args.out, exist_ok=True)

    model = make_model(args.latent_size)
    elbo_apply, generate_apply = model.apply
    optimiser = optax.adam(args.learning_rate)

    def loss_fn(params, key, x):
        neg_elbo, _ = elbo_apply(params, key, x)
        return neg_elbo.mean()

    @jax.jit
    def train_step(params, opt_state, key, x):
        loss, grads = jax.value_and_grad(loss_fn)(params, key, x)
        updates, opt_state = optimiser.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    start = time.perf_counter()
    key = jax.random.PRNGKey(args.seed)
    init_key, key = jax.random.split(key)
    params = jax.jit(model.init)(init_key, x_train[:1])
    opt_state = optimiser.init(params)
    rng = np.random.default_rng(args.seed)

    losses: list[float] = []
    pending = []
    with tqdm(range(1, args.steps + 1), desc="training", unit="step") as bar:
        for step in bar:
            key, step_key = jax.random.split(key)
            x = x_train[rng.choice(len(x_train), args.batch_size, replace=False)]
            params, opt_state, loss = train_step(params, opt_state, step_key, x)
            pending.append(loss)
            if step % 25 == 0 or step == args.steps:
                losses.extend(float(v) for v in jax.device_get(pending))
                pending.clear()
                if not math.isfinite(losses[-1]):
                    raise FloatingPointError(f"loss became {losses[-1]} by step {step}: lower "
                                             f"--learning-rate (now {args.learning_rate})")
                bar.set_postfix(loss=f"{np.mean(losses[-25:]):.2f}", refresh=False)
    train_seconds = time.perf_counter() - start

    eval_key, sample_key = jax.random.split(key)
    neg_elbo, logits = jax.jit(elbo_apply)(params, eval_key, x_test)
    test_neg_elbo = float(neg_elbo.mean())
    baseline = mean_image_nll(x_train, x_test)
    print(f"{args.steps} steps of batch {args.batch_size}, {train_seconds:.1f} s")
    print(f"held-out negative ELBO: {test_neg_elbo:.2f} nats per image (an upper bound on its "
          f"negative log-likelihood); baseline, every pixel at its training mean: {baseline:.2f}")

    samples = jax.jit(generate_apply, static_argnums=2)(params, sample_key, 10)
    plot_path = os.path.join(args.out, "vae_digits.png")
    plot(x_test[:10], np.asarray(jax.nn.sigmoid(logits[:10])), np.asarray(samples), plot_path)
    print(f"saved {plot_path}")
    return {
        "losses": losses,
        "test_neg_elbo": test_neg_elbo,
        "baseline_nll": baseline,
        "params": jax.device_get(params),
        "plot_path": plot_path,
        "train_seconds": train_seconds,
    }


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # Ctrl-C: stop quietly, with the shell's usual status
        print("\ninterrupted", file=sys.stderr)
        sys.exit(130)
