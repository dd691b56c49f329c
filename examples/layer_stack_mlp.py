"""A deep residual MLP whose blocks are stacked with hk.layer_stack (one scanned block).

``hk.layer_stack(num_layers)`` turns a function that builds one block into a stack of
``num_layers`` independent copies: each parameter gets a leading axis of size ``num_layers``
(``linear/w`` of shape ``[64, 256]`` becomes ``[num_layers, 64, 256]``) and the blocks run in a
``jax.lax.scan``, so XLA compiles the block once however deep the network is.

The network classifies scikit-learn's 8x8 digits (no download): a ``hk.Linear`` embeds the 64
pixels, ``--num-layers`` pre-norm residual blocks (``hk.LayerNorm``, ``hk.Linear``, gelu,
``hk.Linear``) transform them, and a last ``hk.Linear`` gives the logits.
``--compare-compile-time`` also builds the same network with a Python loop and prints how long
XLA takes to compile each version.

Usage::

    python examples/layer_stack_mlp.py [--steps N] [--batch-size N] [--num-layers N]
        [--width N] [--learning-rate LR] [--seed N] [--compare-compile-time]
"""

from __future__ import annotations

import argparse
import math
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

NUM_CLASSES = 10
TEST_FRACTION = 0.2
SPLIT_SEED = 0


# --------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="layer_stack_mlp",
        description=(
            "Train a deep residual MLP, its blocks stacked with hk.layer_stack and run in a scan, "
            "on scikit-learn's 8x8 digits (no download); report held-out accuracy."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--steps", type=int_at_least(1), default=800,
                        help="number of optimisation steps (one mini-batch each)")
    parser.add_argument("--batch-size", type=int_at_least(1), default=128,
                        help="training examples per step (at most 1437)")
    parser.add_argument("--num-layers", type=int_at_least(1), default=8,
                        help="residual blocks in the stack")
    parser.add_argument("--width", type=int_at_least(1), default=64,
                        help="width of the residual stream (the blocks' hidden layer is 4x)")
    parser.add_argument("--learning-rate", type=positive_float, default=2e-3,
                        help="Adam learning rate")
    parser.add_argument("--seed", type=int_at_least(0), default=0,
                        help="seed for the initialisation and the order of the mini-batches")
    parser.add_argument("--compare-compile-time", action="store_true",
                        help="also compile the network built with a Python loop and print both "
                             "compile times")
    return parser


# --------------------------------------------------------------------------- data


def load_data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Returns (x_train, y_train, x_test, y_test); 64 pixels scaled to [0, 1]."""
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int32)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=y)
    return x_train, y_train, x_test, y_test


# --------------------------------------------------------------------------- model


def residual_block(x: jax.Array) -> jax.Array:
    """One pre-norm residual block; its modules are created afresh for every layer of the stack."""
    width = x.shape[-1]
    h = hk.LayerNorm(axis=-1, create_scale=True, create_offset=True)(x)
    h = jax.nn.gelu(hk.Linear(4 * width)(h))
    return x + hk.Linear(width, w_init=jnp.zeros)(h)  # each block starts as the identity


def forward(x: jax.Array, num_layers: int, width: int, stacked: bool = True) -> jax.Array:
    x = hk.Linear(width, name="embed")(x)
    if stacked:
        x = hk.layer_stack(num_layers, name="blocks")(residual_block)(x)
    else:  # The same network with a Python loop: num_layers copies of the block in the program.
        for _ in range(num_layers):
            x = residual_block(x)
    x = hk.LayerNorm(axis=-1, create_scale=True, create_offset=True, name="final_norm")(x)
    return hk.Linear(NUM_CLASSES, name="logits")(x)


def compile_seconds(model: hk.Transformed, x: np.ndarray) -> float:
    """Seconds XLA takes to compile the gradient of the network's output (forward and backward)."""
    params = jax.eval_shape(model.init, jax.random.PRNGKey(0), x)
    grad = jax.grad(lambda params, x: model.apply(params, x).sum())
    lowered = jax.jit(grad).lower(params, x)
    start = time.perf_counter()
    lowered.compile()
    return time.perf_counter() - start


# --------------------------------------------------------------------------- training


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Trains and evaluates; returns the metrics. ``argv`` defaults to ``sys.argv[1:]``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    x_train, y_train, x_test, y_test = load_data()
    if args.batch_size > len(x_train):
        parser.error(f"argument --batch-size: must be <= {len(x_train)} (the size of the "
                     f"training split), got {args.batch_size}")

    model = hk.without_apply_rng(hk.transform(
        lambda x: forward(x, args.num_layers, args.width)))
    schedule = optax.cosine_decay_schedule(args.learning_rate, args.steps, alpha=0.1)
    optimiser = optax.adamw(schedule, weight_decay=1e-4)

    def loss_fn(params, x, y):
        logits = model.apply(params, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    @jax.jit
    def train_step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = optimiser.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    @jax.jit
    def accuracy(params, x, y):
        return jnp.mean(jnp.argmax(model.apply(params, x), axis=-1) == y)

    compile_times = {}
    if args.compare_compile_time:
        unstacked = hk.without_apply_rng(hk.transform(
            lambda x: forward(x, args.num_layers, args.width, stacked=False)))
        compile_times = {"layer_stack": compile_seconds(model, x_test),
                         "python_loop": compile_seconds(unstacked, x_test)}
        print(f"compiling forward and backward passes of {args.num_layers} blocks: "
              f"{compile_times['layer_stack']:.2f} s with hk.layer_stack, "
              f"{compile_times['python_loop']:.2f} s with a Python loop")

    start = time.perf_counter()
    params = jax.jit(model.init)(jax.random.PRNGKey(args.seed), x_train[:1])
    print("parameters of the stacked blocks (leading axis: the layer):")
    for module, bundle in params.items():
        if module.startswith("blocks/"):
            shapes = ", ".join(f"{name} {list(value.shape)}" for name, value in bundle.items())
            print(f"  {module}: {shapes}")
    opt_state = optimiser.init(params)
    rng = np.random.default_rng(args.seed)

    losses: list[float] = []
    pending = []
    with tqdm(range(1, args.steps + 1), desc="training", unit="step") as bar:
        for step in bar:
            idx = rng.choice(len(x_train), args.batch_size, replace=False)
            params, opt_state, loss = train_step(params, opt_state, x_train[idx], y_train[idx])
            pending.append(loss)
            if step % 25 == 0 or step == args.steps:
                losses.extend(float(v) for v in jax.device_get(pending))
                pending.clear()
                if not math.isfinite(losses[-1]):
                    raise FloatingPointError(f"loss became {losses[-1]} by step {step}: lower "
                                             f"--learning-rate (now {args.learning_rate})")
                bar.set_postfix(loss=f"{np.mean(losses[-25:]):.4f}", refresh=False)
    train_seconds = time.perf_counter() - start

    test_accuracy = float(accuracy(params, x_test, y_test))
    chance = float(np.max(np.bincount(y_train)) / len(y_train))
    print(f"{args.num_layers} stacked blocks, {args.steps} steps of batch {args.batch_size}, "
          f"{train_seconds:.1f} s")
    print(f"held-out accuracy: {test_accuracy:.4f} ({len(x_test)} images; always guessing the "
          f"most common digit: {chance:.4f})")
    return {
        "losses": losses,
        "test_accuracy": test_accuracy,
        "chance_accuracy": chance,
        "compile_seconds": compile_times,
        "params": jax.device_get(params),
        "train_seconds": train_seconds,
    }


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # Ctrl-C: stop quietly, with the shell's usual status
        print("\ninterrupted", file=sys.stderr)
        sys.exit(130)
