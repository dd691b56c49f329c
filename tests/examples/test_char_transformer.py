"""Tests of examples/char_transformer.py (a brief run, in process, through its ``main``)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "char_transformer.py"


def _load_example():
    spec = importlib.util.spec_from_file_location("char_transformer", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ct = _load_example()
BRIEF = ["--steps", "150", "--batch-size", "8", "--seq-len", "32", "--num-layers", "1",
         "--model-size", "32", "--sample-length", "40", "--prompt", "The "]


def test_brief_run():
    # One test, not several sharing a fixture: pytest-xdist would run the fixture once per worker.
    brief_run = ct.main(BRIEF)
    _check_loss_falls_and_beats_the_baselines(brief_run)
    _check_sample(brief_run)
    _check_parameter_tree(brief_run)


def _check_loss_falls_and_beats_the_baselines(brief_run):
    bits = np.asarray(brief_run["losses"]) / np.log(2)
    assert bits.shape == (150,) and np.all(np.isfinite(bits))
    uniform, unigram = brief_run["uniform_bits_per_char"], brief_run["unigram_bits_per_char"]
    assert uniform == pytest.approx(np.log2(brief_run["vocab_size"]))
    assert 4.0 < unigram < uniform
    # A fresh model guesses about uniformly; the trained one beats the character frequencies.
    assert bits[:5].mean() > uniform - 0.5
    assert bits[-20:].mean() < unigram - 0.3
    assert brief_run["held_out_bits_per_char"] < unigram - 0.3


def _check_sample(brief_run):
    sample = brief_run["sample"]
    assert len(sample) == 40
    assert set(sample) <= set(ct.load_text())


def _check_parameter_tree(brief_run):
    shapes = {m: {n: np.shape(v) for n, v in b.items()} for m, b in brief_run["params"].items()}
    vocab = brief_run["vocab_size"]
    assert shapes["transformer_lm/char_embed"] == {"embeddings": (vocab, 32)}
    assert shapes["transformer_lm"] == {"position_embeddings": (32, 32)}
    for proj in ("query", "key", "value"):
        assert shapes[f"transformer_lm/multi_head_attention/{proj}"] == {"w": (32, 32), "b": (32,)}
    assert shapes["transformer_lm/layer_norm"] == {"scale": (32,), "offset": (32,)}
    assert shapes["transformer_lm/linear_2"] == {"w": (32, vocab), "b": (vocab,)}
    assert brief_run["num_params"] == sum(int(np.prod(s)) for b in shapes.values()
                                          for s in b.values())


def test_text_comes_from_scikit_learn():
    text = ct.load_text()
    assert len(text) > 30_000
    assert "Optical recognition of handwritten digits dataset" in text
    vocab = ct.Vocabulary(text)
    assert vocab.decode(vocab.encode("Iris plants")) == "Iris plants"
    train, held_out = ct.split_text(vocab.encode(text))
    assert len(train) + len(held_out) == len(text)
    assert 0.09 < len(held_out) / len(text) < 0.11


def test_attention_is_causal():
    """Changing a later character never changes the logits at earlier positions."""
    import jax
    import senryu as hk

    model = hk.without_apply_rng(hk.transform(lambda t: ct.TransformerLM(20, 8, 1, 16, 2)(t)))
    tokens = np.arange(8, dtype=np.int32)[None] % 20
    params = jax.jit(model.init)(jax.random.PRNGKey(0), tokens)
    changed = tokens.copy()
    changed[0, 5] = 19
    apply = jax.jit(model.apply)
    a, b = apply(params, tokens), apply(params, changed)
    np.testing.assert_allclose(a[0, :5], b[0, :5], rtol=1e-5, atol=1e-6)
    assert not np.allclose(a[0, 5:], b[0, 5:])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--steps", "0"], "argument --steps: must be >= 1, got 0"),
        (["--seq-len", "1"], "argument --seq-len: must be >= 2, got 1"),
        (["--seq-len", "99999"], "argument --seq-len: must be < 4000"),
        (["--temperature", "-1"], "argument --temperature: must be a finite number > 0"),
        (["--model-size", "30"], "argument --model-size: must be a multiple of --num-heads (4)"),
        (["--prompt", "caf\u00e9 \u263a"],
         "argument --prompt: characters not in the training text"),
        (["--learning-rate", "x"], "argument --learning-rate: expected a number, got 'x'"),
        (["--layers", "3"], "unrecognized arguments: --layers 3"),
    ],
)
def test_bad_flags_exit_2_with_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        ct.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "usage: char_transformer" in err
    assert message in err
    assert "Traceback" not in err
