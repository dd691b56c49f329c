"""Checks run over every registered public module (see registry.py).

Golden trees: ``SENRYU_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/integration -k golden``
rewrites ``golden_trees.json`` from the current senryu.
"""

import contextlib
import functools
import io
import json
import os
import pickle
import re

import haiku
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import senryu as hk
from integration.registry import ENTRIES, REGISTRY
from oracle import assert_same_tree

KEY = jax.random.PRNGKey(0)
GOLDEN_PATH = os.path.join(os.path.dirname(__file__), "golden_trees.json")
UPDATE_GOLDEN = os.environ.get("SENRYU_UPDATE_GOLDEN") == "1"

ALL = [e.name for e in ENTRIES]
LIGHT = [e.name for e in ENTRIES if not e.heavy]
FLOAT = [e.name for e in ENTRIES if not e.heavy and e.float_layer]
# A cheap subset, one per family, also runs inside hk.vmap / hk.remat.
WRAPPABLE = ["Linear", "nets.MLP", "Embed", "Conv1D", "LayerNorm", "BatchNorm", "LSTM", "DeepRNN",
             "MultiHeadAttention", "ExponentialMovingAverage"]


def _entry(name):
    entry = REGISTRY[name]
    if entry.resolve(hk) is None:
        pytest.skip(f"senryu has no {name} yet")
    return entry


def _jnp(tree):
    return jax.tree.map(jnp.asarray, tree)


@functools.lru_cache(maxsize=None)
def _prepared(name):
    """(transformed, jnp inputs, params, state, output, new_state) with senryu, run eagerly."""
    entry = REGISTRY[name]
    f = hk.transform_with_state(entry.function(hk))
    inputs = _jnp(entry.inputs())
    params, state = f.init(KEY, *inputs)
    out, new_state = f.apply(params, state, KEY, *inputs)
    return f, inputs, params, state, out, new_state


def _assert_same(a, b, rtol=1e-5, atol=1e-6):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        assert np.asarray(x).dtype == np.asarray(y).dtype
        np.testing.assert_allclose(np.asarray(x, np.float64), np.asarray(y, np.float64),
                                   rtol=rtol, atol=atol)


def _loss(out):
    leaves = [l for l in jax.tree.leaves(out) if jnp.issubdtype(l.dtype, jnp.floating)]
    return sum(jnp.sum(l.astype(jnp.float32) ** 2) for l in leaves)


def _stack2(tree):
    return jax.tree.map(lambda a: jnp.stack([a, a + 1 if a.dtype != jnp.bool_ else ~a])
                        if jnp.issubdtype(a.dtype, jnp.floating) else jnp.stack([a, a]), tree)


# ---------------------------------------------------------------- leaks and JAX transforms


@pytest.mark.parametrize("name", LIGHT)
def test_no_leaks_plain_jit_grad_vmap(name):
    # One test per module: jax.checking_leaks disables the compilation caches, so each check
    # under it recompiles; keeping them together keeps the directory fast.
    entry = _entry(name)
    _, _, ref_params, ref_state, ref_out, ref_new_state = _prepared(name)
    f = hk.transform_with_state(entry.function(hk))
    inputs = _jnp(entry.inputs())
    batch = _stack2(inputs)
    with jax.checking_leaks() if entry.eager_leak_check else contextlib.nullcontext():
        # Plain.
        params, state = f.init(KEY, *inputs)
        out, new_state = f.apply(params, state, KEY, *inputs)
    with jax.checking_leaks():
        # jax.jit.
        jparams, jstate = jax.jit(f.init)(KEY, *inputs)
        jout, jnew_state = jax.jit(f.apply)(params, state, KEY, *inputs)
        # jax.grad of a scalar loss w.r.t. the parameters.
        # (grad and vmap are jitted: one trace each instead of one per eager op.)
        grads = jax.jit(jax.grad(lambda p: _loss(f.apply(p, state, KEY, *inputs)[0])))(params)
        # jax.vmap over a batch of inputs, parameters unbatched.
        bout, _ = jax.jit(jax.vmap(lambda x: f.apply(params, state, KEY, *x)))(batch)
    _assert_same(out, ref_out)
    _assert_same(new_state, ref_new_state)
    _assert_same(jparams, ref_params)
    _assert_same(jstate, ref_state)
    _assert_same(jout, out, rtol=1e-4, atol=1e-5)
    _assert_same(jnew_state, new_state, rtol=1e-4, atol=1e-5)
    assert jax.tree.structure(grads) == jax.tree.structure(params)
    for g, p in zip(jax.tree.leaves(grads), jax.tree.leaves(params)):
        assert g.shape == p.shape and g.dtype == p.dtype
        assert np.all(np.isfinite(np.asarray(g)))
    _assert_same(jax.tree.map(lambda a: a[0], bout), out, rtol=1e-4, atol=1e-5)


def _init_and_apply_on_stack(g, params, state, inputs):
    """init and apply of ``g`` on two stacked copies of ``inputs``, under jax.checking_leaks;
    apply uses ``params`` and ``state`` (init's own state if None). -> (params, state, out)."""
    f = hk.transform_with_state(g)
    batch = _stack2(inputs)
    with jax.checking_leaks():
        new_params, new_state = f.init(KEY, *batch)
        out, _ = f.apply(params, new_state if state is None else state, KEY, *batch)
    return new_params, new_state, out


@pytest.mark.parametrize("name", [n for n in WRAPPABLE if not REGISTRY[n].state])
def test_no_leaks_hk_vmap(name):
    entry = _entry(name)
    _, inputs, params, _, out, _ = _prepared(name)

    def g(*xs):
        return hk.vmap(lambda *x: entry.call(entry.build(hk), *x, **entry.kwargs),
                       split_rng=False)(*xs)

    vparams, _, bout = _init_and_apply_on_stack(g, params, None, inputs)
    assert jax.tree.map(np.shape, vparams) == jax.tree.map(np.shape, params)
    _assert_same(jax.tree.map(lambda a: a[0], bout), out, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", WRAPPABLE)
def test_no_leaks_hk_scan(name):
    """The module called in an hk.scan body over a stack of two inputs: parameters are created
    in the loop at init, shared by both steps; state is threaded through the steps."""
    entry = _entry(name)
    _, inputs, params, state, out, _ = _prepared(name)

    def g(*xs):
        module = entry.build(hk)

        def body(carry, x):
            return carry, entry.call(module, *x, **entry.kwargs)
        return hk.scan(body, 0, xs)[1]

    sparams, sstate, sout = _init_and_apply_on_stack(g, params, state, inputs)
    assert jax.tree.map(np.shape, sparams) == jax.tree.map(np.shape, params)
    assert jax.tree.map(np.shape, sstate) == jax.tree.map(np.shape, state)
    _assert_same(jax.tree.map(lambda a: a[0], sout), out, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", WRAPPABLE)
def test_no_leaks_hk_remat(name):
    entry = _entry(name)
    _, inputs, params, state, out, new_state = _prepared(name)
    f = hk.transform_with_state(lambda *x: hk.remat(entry.function(hk))(*x))
    with jax.checking_leaks():
        rparams, rstate = f.init(KEY, *inputs)
        rout, rnew_state = f.apply(params, state, KEY, *inputs)
    _assert_same(rparams, params)
    _assert_same(rstate, state)
    _assert_same(rout, out, rtol=1e-4, atol=1e-5)
    _assert_same(rnew_state, new_state, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", LIGHT)
def test_state_and_rng_flags(name):
    entry = _entry(name)
    f, inputs, params, state, out, _ = _prepared(name)
    assert bool(jax.tree.leaves(state)) == entry.state, state
    if not entry.rng:
        out_no_rng, _ = f.apply(params, state, None, *inputs)
        _assert_same(out_no_rng, out)


# ---------------------------------------------------------------- trees


def _tree_record(tree):
    return [[module, name, list(v.shape), str(v.dtype)]
            for module, values in tree.items() for name, v in values.items()]


def _shapes(entry, lib):
    f = lib.transform_with_state(entry.function(lib))
    inputs = entry.inputs()
    spec = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), inputs)
    return jax.eval_shape(f.init, KEY, *spec)


def _load_golden():
    if not os.path.exists(GOLDEN_PATH):
        return {}
    with open(GOLDEN_PATH) as fp:
        return json.load(fp)


@pytest.mark.parametrize("name", ALL)
def test_golden_tree(name):
    entry = _entry(name)
    params, state = _shapes(entry, hk)
    record = {"params": _tree_record(params), "state": _tree_record(state)}
    golden = _load_golden()
    if UPDATE_GOLDEN:
        golden[name] = record
        golden = {k: golden[k] for k in sorted(golden)}
        with open(GOLDEN_PATH, "w") as fp:
            json.dump(golden, fp, indent=1)
            fp.write("\n")
    assert name in golden, (
        f"no golden tree for {name}: run SENRYU_UPDATE_GOLDEN=1 pytest tests/integration -k golden")
    assert record == golden[name], (
        f"{name}'s parameter/state tree changed; if intended, regenerate with "
        "SENRYU_UPDATE_GOLDEN=1")


def test_golden_file_has_no_stale_entries():
    golden = _load_golden()
    live = {e.name for e in ENTRIES if e.resolve(hk) is not None}
    assert set(golden) <= live, sorted(set(golden) - live)


@pytest.mark.parametrize("name", ALL)
def test_tree_matches_haiku(name):
    entry = _entry(name)
    if entry.resolve(haiku) is None:
        pytest.skip(f"dm-haiku has no {name}")
    ours, theirs = _shapes(entry, hk), _shapes(entry, haiku)
    assert_same_tree(ours[0], theirs[0])
    assert_same_tree(ours[1], theirs[1])


# ---------------------------------------------------------------- serialisation


def _flatten(params, state):
    flat = {}
    for kind, tree in (("params", params), ("state", state)):
        for module, values in tree.items():
            for name, v in values.items():
                flat[f"{kind}/{module}/{name}"] = np.asarray(v)
    return flat


def _unflatten(flat):
    trees = {"params": {}, "state": {}}
    for key in flat.files if hasattr(flat, "files") else flat:
        kind, rest = key.split("/", 1)
        module, name = rest.rsplit("/", 1)
        trees[kind].setdefault(module, {})[name] = jnp.asarray(flat[key])
    return trees["params"], trees["state"]


@pytest.mark.parametrize("name", LIGHT)
def test_savez_round_trip(name):
    _entry(name)
    f, inputs, params, state, out, _ = _prepared(name)
    buf = io.BytesIO()
    np.savez(buf, **_flatten(params, state))
    buf.seek(0)
    with np.load(buf) as loaded:
        params2, state2 = _unflatten(loaded)
    _assert_same(params2, params)
    _assert_same(state2, state)
    out2, _ = f.apply(params2, state2, KEY, *inputs)
    _assert_same(out2, out, rtol=0, atol=0)


@pytest.mark.parametrize("name", LIGHT)
def test_pickle_round_trip(name):
    _entry(name)
    f, inputs, params, state, out, _ = _prepared(name)
    params2, state2 = pickle.loads(pickle.dumps((params, state)))
    out2, _ = f.apply(params2, state2, KEY, *inputs)
    _assert_same(out2, out, rtol=0, atol=0)


@pytest.mark.parametrize("name", LIGHT)
def test_jax_export_round_trip(name):
    _entry(name)
    f, inputs, params, state, _, _ = _prepared(name)
    exported = jax.export.export(jax.jit(f.apply))(params, state, KEY, *inputs)
    restored = jax.export.deserialize(exported.serialize())
    expected = jax.jit(f.apply)(params, state, KEY, *inputs)
    _assert_same(restored.call(params, state, KEY, *inputs), expected, rtol=1e-6, atol=1e-6)


# ---------------------------------------------------------------- dtypes


def _cast(tree, dtype):
    return jax.tree.map(lambda a: jnp.asarray(a, dtype)
                        if jnp.issubdtype(a.dtype, jnp.floating) else jnp.asarray(a), tree)


def _float_dtypes(tree):
    return [str(l.dtype) for l in jax.tree.leaves(tree) if jnp.issubdtype(l.dtype, jnp.floating)]


def _abstract_out(entry, lib, dtype):
    # Abstract evaluation only: dtypes need no values (and no compilation).
    f = lib.transform_with_state(entry.function(lib))
    inputs = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype),
                          _cast(entry.inputs(), dtype))
    params, state = jax.eval_shape(f.init, KEY, *inputs)
    out = jax.eval_shape(f.apply, params, state, KEY, *inputs)[0]
    return params, out


def _check_keeps_dtype(name, dtype):
    entry = _entry(name)
    want = jnp.dtype(dtype).name
    ours_params, ours_out = _abstract_out(entry, hk, dtype)
    ours = _float_dtypes(ours_out)
    if entry.resolve(haiku) is not None:
        # Drop-in first: the same parameter and output dtypes as dm-haiku. dm-haiku itself gives
        # float32 for the recurrent cores here: their initial_state is float32 and promotes a
        # lower-precision input.
        theirs_params, theirs_out = _abstract_out(entry, haiku, dtype)
        assert ours == _float_dtypes(theirs_out)
        assert _float_dtypes(ours_params) == _float_dtypes(theirs_params)
        if set(ours) != {want}:
            return
    assert ours and set(ours) == {want}, f"{name} turned a {want} input into {ours}"


@pytest.mark.parametrize("name", FLOAT)
def test_bfloat16_inputs_keep_bfloat16(name):
    _check_keeps_dtype(name, jnp.bfloat16)


@pytest.mark.parametrize("name", FLOAT)
def test_float16_inputs_keep_float16(name):
    _check_keeps_dtype(name, jnp.float16)


@pytest.mark.parametrize("name", FLOAT)
def test_float64_inputs_keep_float64_with_x64(name):
    with jax.enable_x64(True):
        _check_keeps_dtype(name, jnp.float64)
        # And nothing silently computes in float32 where float64 was asked for: every floating
        # output and parameter is float64 (dm-haiku's recurrent cores included, as x64 makes
        # their float32 initial_state promote up, not down).
        entry = _entry(name)
        params, out = _abstract_out(entry, hk, jnp.float64)
        assert set(_float_dtypes(out)) <= {"float64"}, _float_dtypes(out)


@pytest.mark.parametrize("name", LIGHT)
def test_strict_rank_and_dtype_promotion_raise_nothing(name):
    """Under jax_numpy_rank_promotion='raise' and jax_numpy_dtype_promotion='strict' the library
    itself never relies on implicit rank or dtype promotion."""
    entry = _entry(name)
    f = hk.transform_with_state(entry.function(hk))
    inputs = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape, a.dtype), entry.inputs())
    with jax.numpy_rank_promotion("raise"), jax.numpy_dtype_promotion("strict"):
        params, state = jax.eval_shape(f.init, KEY, *inputs)
        out, _ = jax.eval_shape(f.apply, params, state, KEY, *inputs)
    assert jax.tree.leaves(out)


@pytest.mark.parametrize("name", LIGHT)
def test_numpy_inputs_like_jax_arrays(name):
    entry = _entry(name)
    f, _, params, state, out, new_state = _prepared(name)
    np_inputs = entry.inputs()
    np_params, np_state = f.init(KEY, *np_inputs)
    _assert_same(np_params, params)
    _assert_same(np_state, state)
    np_out, np_new_state = f.apply(params, state, KEY, *np_inputs)
    _assert_same(np_out, out, rtol=0, atol=0)
    _assert_same(np_new_state, new_state, rtol=0, atol=0)


# ---------------------------------------------------------------- experimental summaries


def _normalised_table(table: str) -> list[str]:
    # Object reprs (``<senryu.initializers.VarianceScaling object at 0x...>``) differ between the
    # libraries and change column widths; everything else must be the same.
    table = re.sub(r"<[^<>]* at 0x[0-9a-f]+>", "<object>", table)
    return [re.sub(r"[-=]{2,}", "-", re.sub(r" +", " ", line)) for line in table.splitlines()]


def _spec_key(spec):
    if hasattr(spec, "shape"):
        return spec.shape, str(spec.dtype)
    return type(spec).__name__, str(spec)  # static outputs (a bool, a submodule...)


# dm-haiku's param count for an ``initial_state`` row is not the set of parameters under the
# module: DeepRNN.initial_state counts only the GRU's (72, not the LSTM's too), ResetCore's
# counts none while its LSTM's counts 128. We count every parameter of the module and of the
# modules it called, consistently for every row; for these two the count columns are left out
# of the comparison and the rest of both tables must still be the same.
_TABULATE_PARAM_COUNT_DIFFERS = {"DeepRNN", "ResetCore"}


def _without_count_columns(lines):
    return ["|".join(line.split("|")[:-3] + [""]) if line.startswith("|") else line
            for line in lines]


@pytest.mark.parametrize("name", LIGHT)
def test_tabulate(name):
    """The same rows, columns and numbers as dm-haiku's table."""
    entry = _entry(name)
    table = hk.experimental.tabulate(entry.function(hk))(*entry.inputs())
    assert isinstance(table, str)
    theirs = haiku.experimental.tabulate(entry.function(haiku))(*entry.inputs())
    ours, theirs = _normalised_table(table), _normalised_table(theirs)
    if name in _TABULATE_PARAM_COUNT_DIFFERS:
        assert ours != theirs
        ours, theirs = _without_count_columns(ours), _without_count_columns(theirs)
    assert ours == theirs


@pytest.mark.parametrize("name", LIGHT)
def test_to_dot_names_every_module(name):
    entry = _entry(name)
    f, inputs, params, state, _, _ = _prepared(name)
    dot = hk.experimental.to_dot(f.apply)(params, state, KEY, *inputs)
    assert dot.lstrip().startswith("digraph")
    assert dot.count("{") == dot.count("}")
    called = {i.module_details.module.module_name
              for i in hk.experimental.eval_summary(entry.function(hk))(*entry.inputs())}
    assert called
    for module_name in called:
        assert module_name in dot, f"{module_name} missing from the DOT graph of {name}"


@pytest.mark.parametrize("name", LIGHT)
def test_eval_summary(name):
    entry = _entry(name)
    ours = hk.experimental.eval_summary(entry.function(hk))(*entry.inputs())
    theirs = haiku.experimental.eval_summary(entry.function(haiku))(*entry.inputs())
    assert [i.module_details.module.module_name for i in ours] == \
        [i.module_details.module.module_name for i in theirs]
    assert [i.module_details.method_name for i in ours] == \
        [i.module_details.method_name for i in theirs]
    assert [jax.tree.map(_spec_key, i.output_spec) for i in ours] == \
        [jax.tree.map(_spec_key, i.output_spec) for i in theirs]
