"""An LSTM learns to echo its input a few steps late (a synthetic memory task).

Each sequence is ``--length`` random symbols out of ``--num-symbols``; at step ``t`` the target is
the symbol seen at step ``t - delay``. A model without memory can only guess (accuracy
``1 / num-symbols``); the LSTM must hold the last ``delay`` symbols in its state.

The model, written with the Haiku API (``import senryu as hk``): one-hot symbols go through an
``hk.LSTM`` unrolled over time with ``hk.dynamic_unroll`` (a scan, so one compiled step serves any
length), then an ``hk.Linear`` read-out at every step. Inputs are time-major, ``[T, B, ...]``.

Usage::

    python examples/lstm_echo.py [--steps N] [--batch-size N] [--length N] [--delay N]
        [--num-symbols N] [--hidden-size N] [--learning-rate LR] [--seed N]
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
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for the shared _cli.py
from _cli import int_at_least, positive_float  # noqa: E402

EVAL_SEQUENCES = 1000


# --------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lstm_echo",
        description=(
            "Train an LSTM (hk.LSTM unrolled with hk.dynamic_unroll) to output, at every step, "
            "the symbol it saw --delay steps earlier; report its accuracy on fresh sequences."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--steps", type=int_at_least(1), default=1000,
                        help="number of optimisation steps (one batch of fresh sequences each)")
    parser.add_argument("--batch-size", type=int_at_least(1), default=64,
                        help="sequences per step")
    parser.add_argument("--length", type=int_at_least(2), default=20,
                        help="symbols per sequence")
    parser.add_argument("--delay", type=int_at_least(1), default=3,
                        help="how many steps late the input is echoed (less than --length)")
    parser.add_argument("--num-symbols", type=int_at_least(2), default=8,
                        help="size of the alphabet")
    parser.add_argument("--hidden-size", type=int_at_least(1), default=64,
                        help="LSTM state size")
    parser.add_argument("--learning-rate", type=positive_float, default=1e-2,
                        help="Adam learning rate")
    parser.add_argument("--seed", type=int_at_least(0), default=0,
                        help="seed for the initialisation and the data")
    return parser


# --------------------------------------------------------------------------- data


def make_batch(key: jax.Array, batch_size: int, length: int, delay: int,
               num_symbols: int) -> tuple[jax.Array, jax.Array]:
    """Returns time-major ``(symbols [T, B], targets [T - delay, B])``."""
    symbols = jax.random.randint(key, [length, batch_size], 0, num_symbols)
    return symbols, symbols[:length - delay]


# --------------------------------------------------------------------------- model


def forward(symbols: jax.Array, num_symbols: int, hidden_size: int, delay: int) -> jax.Array:
    """Symbols ``[T, B]`` -> logits ``[T - delay, B, num_symbols]`` for steps ``delay..T-1``."""
    core = hk.LSTM(hidden_size)
    inputs = jax.nn.one_hot(symbols, num_symbols)
    initial_state = core.initial_state(symbols.shape[1])
    outputs, _ = hk.dynamic_unroll(core, inputs, initial_state)  # time-major: [T, B, hidden]
    return hk.Linear(num_symbols)(outputs[delay:])


# --------------------------------------------------------------------------- training


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Trains and evaluates; returns the metrics. ``argv`` defaults to ``sys.argv[1:]``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.delay >= args.length:
        parser.error(f"argument --delay: must be < --length ({args.length}), got {args.delay}")

    model = hk.without_apply_rng(hk.transform(
        lambda s: forward(s, args.num_symbols, args.hidden_size, args.delay)))
    optimiser = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(args.learning_rate))
    batch = jax.tree_util.Partial(make_batch, batch_size=args.batch_size, length=args.length,
                                  delay=args.delay, num_symbols=args.num_symbols)

    def loss_fn(params, symbols, targets):
        logits = model.apply(params, symbols)
        return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()

    @jax.jit
    def train_step(params, opt_state, key):
        symbols, targets = batch(key)
        loss, grads = jax.value_and_grad(loss_fn)(params, symbols, targets)
        updates, opt_state = optimiser.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    @jax.jit
    def accuracy(params, symbols, targets):
        return jnp.mean(jnp.argmax(model.apply(params, symbols), axis=-1) == targets)

    start = time.perf_counter()
    init_key, data_key, eval_key = jax.random.split(jax.random.PRNGKey(args.seed), 3)
    params = jax.jit(model.init)(init_key, jnp.zeros([args.length, 1], jnp.int32))
    opt_state = optimiser.init(params)
    step_keys = jax.random.split(data_key, args.steps)

    losses: list[float] = []
    pending = []
    with tqdm(range(args.steps), desc="training", unit="step") as bar:
        for step in bar:
            params, opt_state, loss = train_step(params, opt_state, step_keys[step])
            pending.append(loss)
            if (step + 1) % 25 == 0 or step + 1 == args.steps:
                losses.extend(float(v) for v in jax.device_get(pending))
                pending.clear()
                if not math.isfinite(losses[-1]):
                    raise FloatingPointError(f"loss became {losses[-1]} by step {step + 1}: "
                                             f"lower --learning-rate (now {args.learning_rate})")
                bar.set_postfix(loss=f"{np.mean(losses[-25:]):.4f}", refresh=False)
    train_seconds = time.perf_counter() - start

    symbols, targets = make_batch(eval_key, EVAL_SEQUENCES, args.length, args.delay,
                                  args.num_symbols)
    test_accuracy = float(accuracy(params, symbols, targets))
    chance = 1.0 / args.num_symbols
    print(f"{args.steps} steps of {args.batch_size} sequences, {train_seconds:.1f} s")
    print(f"accuracy on {EVAL_SEQUENCES} fresh sequences (echo of the symbol {args.delay} steps "
          f"back): {test_accuracy:.4f} (chance: {chance:.4f})")
    return {
        "losses": losses,
        "test_accuracy": test_accuracy,
        "chance_accuracy": chance,
        "params": jax.device_get(params),
        "train_seconds": train_seconds,
    }


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # Ctrl-C: stop quietly, with the shell's usual status
        print("\ninterrupted", file=sys.stderr)
        sys.exit(130)
