"""A character-level transformer language model, trained on text that ships with scikit-learn.

The corpus is the set of data-set descriptions in ``sklearn/datasets/descr/*.rst`` (about 43,000
characters of English and reStructuredText, installed with scikit-learn: nothing is downloaded).
One block of 1,000 characters in ten is held out.

The model is a small decoder-only transformer written with the Haiku API (``import senryu as hk``):
``hk.Embed`` for the characters plus a learned position embedding, then ``--num-layers`` pre-norm
blocks of causal ``hk.MultiHeadAttention`` and a two-layer MLP, each behind an ``hk.LayerNorm``, and
a final ``hk.Linear`` to the vocabulary. After training it reports the held-out loss in bits per
character next to two trivial baselines (a uniform guess and the character frequencies), and
samples some text from a prompt.

Usage::

    python examples/char_transformer.py [--steps N] [--batch-size N] [--seq-len N]
        [--num-layers N] [--model-size N] [--num-heads N] [--learning-rate LR] [--seed N]
        [--prompt TEXT] [--sample-length N] [--temperature T]
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
import time
from importlib import resources
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
import senryu as hk
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for the shared _cli.py
from _cli import int_at_least, positive_float  # noqa: E402

HELD_OUT_EVERY = 10  # Every 10th block of the text is held out...
BLOCK_CHARS = 1000  # ...with blocks this long, so both parts mix all the descriptions.
LOG2 = math.log(2.0)


# --------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="char_transformer",
        description=(
            "Train a small character-level transformer language model on the data-set "
            "descriptions that ship with scikit-learn, report held-out bits per character and "
            "sample text from it."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--steps", type=int_at_least(1), default=800,
                        help="number of optimisation steps (one mini-batch each; the text is "
                             "small, so many more steps over-fit it)")
    parser.add_argument("--batch-size", type=int_at_least(1), default=16,
                        help="sequences per step")
    parser.add_argument("--seq-len", type=int_at_least(2), default=64,
                        help="characters of context the model sees")
    parser.add_argument("--num-layers", type=int_at_least(1), default=2,
                        help="transformer blocks")
    parser.add_argument("--model-size", type=int_at_least(1), default=64,
                        help="width of the residual stream (a multiple of --num-heads)")
    parser.add_argument("--num-heads", type=int_at_least(1), default=4,
                        help="attention heads per block")
    parser.add_argument("--learning-rate", type=positive_float, default=1e-2,
                        help="peak Adam learning rate (warm-up, then cosine decay)")
    parser.add_argument("--seed", type=int_at_least(0), default=0,
                        help="seed for the initialisation, the mini-batches and the sampling")
    parser.add_argument("--prompt", default="The data set ",
                        help="text the sample starts from (characters unseen in training are "
                             "rejected)")
    parser.add_argument("--sample-length", type=int_at_least(0), default=300,
                        help="characters to sample after training (0: no sample)")
    parser.add_argument("--temperature", type=positive_float, default=0.8,
                        help="sampling temperature (lower: more conservative text)")
    return parser


# --------------------------------------------------------------------------- data


def load_text() -> str:
    """The concatenated ``.rst`` descriptions of scikit-learn's data sets, in name order."""
    folder = resources.files("sklearn.datasets") / "descr"
    pages = sorted((p for p in folder.iterdir() if p.name.endswith(".rst")), key=lambda p: p.name)
    return "\n\n".join(p.read_text(encoding="utf-8") for p in pages)


class Vocabulary:
    """Maps the characters of a text to consecutive integer ids and back."""

    def __init__(self, text: str):
        self.chars = sorted(set(text))
        self.index = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        return np.array([self.index[c] for c in text], dtype=np.int32)

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.chars[int(i)] for i in ids)


def split_text(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Returns (train, held_out): every ``HELD_OUT_EVERY``-th block of ``BLOCK_CHARS`` is held out.

    The joins between the training blocks make a few windows span two places of the text; that
    costs little and keeps the held-out text spread over all the descriptions.
    """
    block = np.arange(len(ids)) // BLOCK_CHARS
    held_out = block % HELD_OUT_EVERY == HELD_OUT_EVERY - 1
    return ids[~held_out], ids[held_out]


def random_windows(ids: np.ndarray, batch_size: int, length: int, rng: np.random.Generator):
    """Yields forever ``[batch_size, length + 1]`` windows of ``ids`` at random offsets."""
    offsets = np.arange(length + 1)
    while True:
        starts = rng.integers(0, len(ids) - length, size=batch_size)
        yield ids[starts[:, None] + offsets]


def unigram_bits_per_char(train: np.ndarray, held_out: np.ndarray, vocab_size: int) -> float:
    """Held-out cross-entropy (bits/char) of the character frequencies of ``train`` (add-one)."""
    counts = np.bincount(train, minlength=vocab_size) + 1.0
    log_p = np.log2(counts / counts.sum())
    return float(-log_p[held_out].mean())


# --------------------------------------------------------------------------- model


class TransformerLM(hk.Module):
    """A decoder-only transformer: token ids ``[B, T]`` -> next-character logits ``[B, T, V]``."""

    def __init__(self, vocab_size: int, max_len: int, num_layers: int, model_size: int,
                 num_heads: int, name: str | None = None):
        super().__init__(name=name)
        self.vocab_size = vocab_size
        self.max_len = max_len
        self.num_layers = num_layers
        self.model_size = model_size
        self.num_heads = num_heads

    def __call__(self, tokens: jax.Array) -> jax.Array:
        length = tokens.shape[-1]
        x = hk.Embed(self.vocab_size, self.model_size, name="char_embed")(tokens)
        positions = hk.get_parameter("position_embeddings", [self.max_len, self.model_size],
                                     init=hk.initializers.TruncatedNormal(stddev=0.02))
        x = x + positions[:length]
        # Position i attends to positions <= i; the mask broadcasts over batch and heads.
        causal = jnp.tril(jnp.ones([1, 1, length, length], dtype=bool))
        # Scaling the residual branches with depth keeps the stream's variance steady at init.
        w_init = hk.initializers.VarianceScaling(2.0 / self.num_layers)
        for _ in range(self.num_layers):
            h = hk.LayerNorm(axis=-1, create_scale=True, create_offset=True)(x)
            x = x + hk.MultiHeadAttention(
                num_heads=self.num_heads, key_size=self.model_size // self.num_heads,
                model_size=self.model_size, w_init=w_init)(h, h, h, mask=causal)
            h = hk.LayerNorm(axis=-1, create_scale=True, create_offset=True)(x)
            h = jax.nn.gelu(hk.Linear(4 * self.model_size, w_init=w_init)(h))
            x = x + hk.Linear(self.model_size, w_init=w_init)(h)
        x = hk.LayerNorm(axis=-1, create_scale=True, create_offset=True)(x)
        return hk.Linear(self.vocab_size)(x)


# --------------------------------------------------------------------------- sampling


def sample(logits_fn, params, prompt_ids: np.ndarray, length: int, seq_len: int,
           temperature: float, key: jax.Array) -> list[int]:
    """Draws ``length`` characters one at a time, each from the model's next-character logits.

    The model sees a fixed window of ``seq_len`` characters (one compiled program): shorter
    contexts are left-aligned and padded, and the logits are read at the last real position.
    """
    ids = list(prompt_ids)
    window = np.zeros([1, seq_len], np.int32)
    for _ in range(length):
        context = ids[-seq_len:]
        window[0, :len(context)] = context
        key, subkey = jax.random.split(key)
        ids.append(int(logits_fn(params, window, len(context) - 1, temperature, subkey)))
    return ids[len(prompt_ids):]


# --------------------------------------------------------------------------- training


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Trains, evaluates and samples; returns the metrics. ``argv`` defaults to ``sys.argv[1:]``."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.model_size % args.num_heads:
        parser.error(f"argument --model-size: must be a multiple of --num-heads "
                     f"({args.num_heads}), got {args.model_size}")
    text = load_text()
    vocab = Vocabulary(text)
    unknown = sorted(set(args.prompt) - set(vocab.chars))
    if unknown:
        parser.error(f"argument --prompt: characters not in the training text: {unknown}")
    ids = vocab.encode(text)
    train_ids, held_out_ids = split_text(ids)
    if args.seq_len >= len(held_out_ids):
        parser.error(f"argument --seq-len: must be < {len(held_out_ids)} (the held-out text), "
                     f"got {args.seq_len}")

    def forward(tokens):
        return TransformerLM(len(vocab), args.seq_len, args.num_layers, args.model_size,
                             args.num_heads)(tokens)

    model = hk.without_apply_rng(hk.transform(forward))
    warmup = min(100, args.steps // 10 + 1)
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, args.learning_rate, warmup_steps=warmup, decay_steps=max(args.steps, warmup + 1),
        end_value=args.learning_rate / 10)
    optimiser = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule))

    def loss_fn(params, windows):
        logits = model.apply(params, windows[:, :-1])
        return optax.softmax_cross_entropy_with_integer_labels(logits, windows[:, 1:]).mean()

    @jax.jit
    def train_step(params, opt_state, windows):
        loss, grads = jax.value_and_grad(loss_fn)(params, windows)
        updates, opt_state = optimiser.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    eval_loss = jax.jit(loss_fn)

    @jax.jit
    def next_char(params, window, position, temperature, key):
        logits = model.apply(params, window)[0, position]
        return jax.random.categorical(key, logits / temperature)

    start = time.perf_counter()
    params = jax.jit(model.init)(jax.random.PRNGKey(args.seed), train_ids[None, :args.seq_len])
    num_params = sum(int(np.size(p)) for p in jax.tree_util.tree_leaves(params))
    print(f"vocabulary: {len(vocab)} characters; text: {len(train_ids)} training and "
          f"{len(held_out_ids)} held-out characters; model: {num_params} parameters")
    opt_state = optimiser.init(params)
    rng = np.random.default_rng(args.seed)
    data = random_windows(train_ids, args.batch_size, args.seq_len, rng)

    losses: list[float] = []
    pending = []
    with tqdm(range(1, args.steps + 1), desc="training", unit="step") as bar:
        for step in bar:
            params, opt_state, loss = train_step(params, opt_state, next(data))
            pending.append(loss)
            if step % 25 == 0 or step == args.steps:
                losses.extend(float(v) for v in jax.device_get(pending))
                pending.clear()
                if not math.isfinite(losses[-1]):
                    raise FloatingPointError(f"loss became {losses[-1]} by step {step}: lower "
                                             f"--learning-rate (now {args.learning_rate})")
                bar.set_postfix(loss=f"{np.mean(losses[-25:]):.3f}", refresh=False)
    train_seconds = time.perf_counter() - start

    # Held-out loss over consecutive non-overlapping windows (every character predicted once).
    count = (len(held_out_ids) - 1) // args.seq_len
    offsets = np.arange(count)[:, None] * args.seq_len + np.arange(args.seq_len + 1)
    held_out_bits = float(eval_loss(params, held_out_ids[offsets])) / LOG2
    uniform_bits = math.log2(len(vocab))
    unigram_bits = unigram_bits_per_char(train_ids, held_out_ids, len(vocab))

    print(f"{args.steps} steps of {args.batch_size} x {args.seq_len} characters, "
          f"{train_seconds:.1f} s")
    print(f"held-out bits per character: {held_out_bits:.3f} (baselines: character frequencies "
          f"{unigram_bits:.3f}, uniform {uniform_bits:.3f})")

    sampled = ""
    if args.sample_length:
        sample_ids = sample(next_char, params, vocab.encode(args.prompt), args.sample_length,
                            args.seq_len, args.temperature, jax.random.PRNGKey(args.seed))
        sampled = vocab.decode(sample_ids)
        print(f"--- sample (temperature {args.temperature}) ---")
        print(args.prompt + sampled)
    return {
        "losses": losses,
        "held_out_bits_per_char": held_out_bits,
        "unigram_bits_per_char": unigram_bits,
        "uniform_bits_per_char": uniform_bits,
        "vocab_size": len(vocab),
        "num_params": num_params,
        "params": jax.device_get(params),
        "sample": sampled,
        "train_seconds": train_seconds,
    }


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:  # Ctrl-C: stop quietly, with the shell's usual status
        print("\ninterrupted", file=sys.stderr)
        sys.exit(130)
