"""Measures one group of figures for one library in this (fresh) process; prints one JSON line.

Usage: python benchmarks/measure.py LIB GROUP   (LIB: senryu | haiku | jax; GROUP: see GROUPS)
Run by ``benchmarks/run.py``, which alternates libraries in fresh processes.
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time
import timeit

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402

import models  # noqa: E402

REPEATS = int(os.environ.get("BENCH_REPEATS", "3"))
# Trace figures are a few to a few hundred ms and the shared machine is noisy: best of more.
TRACE_REPEATS = int(os.environ.get("BENCH_TRACE_REPEATS", "7"))
# Compile-time figures cost tens of seconds each (XLA's work, the same for every library):
# run.py measures them in the first round only.
COMPILE = os.environ.get("BENCH_COMPILE", "1") == "1"


def _library(name: str):
    if name == "senryu":
        import senryu
        return senryu
    import haiku
    return haiku


def _best(fn, repeats=REPEATS) -> float:
    """Best wall time of ``fn()`` in seconds (fresh objects are the caller's business)."""
    times = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _has_state(f) -> bool:
    return type(f).__name__.endswith("WithState")


def model_figures(hk, model: str) -> dict:
    """Trace (lower) and compile time of init and apply; compiled train step time."""
    build = models.MODELS[model]
    key = jax.random.PRNGKey(0)
    out = {}

    def fresh():
        return build(hk)

    f, args = fresh()
    init_out = jax.jit(f.init)(key, *args)
    params, state = init_out if _has_state(f) else (init_out, None)
    apply_args = (params, state, key, *args) if _has_state(f) else (params, key, *args)

    out["trace_init_ms"] = 1e3 * _best(lambda: jax.jit(fresh()[0].init).lower(key, *args), repeats=TRACE_REPEATS)
    out["trace_apply_ms"] = 1e3 * _best(lambda: jax.jit(fresh()[0].apply).lower(*apply_args), repeats=TRACE_REPEATS)
    # Trace time split: Python building the jaxpr (where the library runs) vs the whole lower().
    out["jaxpr_init_ms"] = 1e3 * _best(lambda: jax.make_jaxpr(fresh()[0].init)(key, *args), repeats=TRACE_REPEATS)
    out["jaxpr_apply_ms"] = 1e3 * _best(lambda: jax.make_jaxpr(fresh()[0].apply)(*apply_args), repeats=TRACE_REPEATS)
    if COMPILE:
        lowered_init = jax.jit(fresh()[0].init).lower(key, *args)
        lowered_apply = jax.jit(fresh()[0].apply).lower(*apply_args)
        out["compile_init_ms"] = 1e3 * _best(lambda: lowered_init.compile(), repeats=1)
        out["compile_apply_ms"] = 1e3 * _best(lambda: lowered_apply.compile(), repeats=1)
    if model != "resnet50":  # the issue asks for the MLP and transformer steps; ResNet's is ~1 s
        out["step_us"] = 1e6 * _train_step_time(f, params, state, args)
    return out


def _train_step_time(f, params, state, args) -> float:
    opt = optax.adam(1e-3)

    def loss_fn(params, state):
        if state is None:
            return jnp.mean(f.apply(params, None, *args) ** 2), state
        out, state = f.apply(params, state, None, *args)
        return jnp.mean(out ** 2), state

    @jax.jit
    def step(params, state, opt_state):
        (loss, state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, state)
        updates, opt_state = opt.update(grads, opt_state)
        return optax.apply_updates(params, updates), state, opt_state, loss

    return _time_step(step, params, state, opt.init(params))


def _time_step(step, *carry) -> float:
    carry = step(*carry)[:-1]
    jax.block_until_ready(carry)
    start = time.perf_counter()
    carry = step(*carry)[:-1]
    jax.block_until_ready(carry)
    # About a second per repeat: 20 steps of the MLP, a few of the big models.
    number = max(2, min(20, int(1.0 / (time.perf_counter() - start))))

    def run():
        nonlocal carry
        for _ in range(number):
            carry = step(*carry)[:-1]
        jax.block_until_ready(carry)
    return min(timeit.repeat(run, number=1, repeat=REPEATS)) / number


def pure_figures(model: str) -> dict:
    """The hand-written JAX version of ``model`` (same math, same params): apply trace time, the
    floor any library's trace sits on, and the train step. Fresh function objects for each trace,
    as the library figures get a fresh transform."""
    import senryu
    pure_apply = models.PURE_APPLY[model]
    f, (x,) = models.MODELS[model](senryu)
    params = f.init(jax.random.PRNGKey(0), x)
    opt = optax.adam(1e-3)

    @jax.jit
    def step(params, opt_state):
        loss, grads = jax.value_and_grad(lambda p: jnp.mean(pure_apply(p, x) ** 2))(params)
        updates, opt_state = opt.update(grads, opt_state)
        return optax.apply_updates(params, updates), opt_state, loss

    return {
        "trace_apply_ms": 1e3 * _best(
            lambda: jax.jit(lambda p, x: pure_apply(p, x)).lower(params, x),
            repeats=TRACE_REPEATS),
        "jaxpr_apply_ms": 1e3 * _best(
            lambda: jax.make_jaxpr(lambda p, x: pure_apply(p, x))(params, x),
            repeats=TRACE_REPEATS),
        "step_us": 1e6 * _time_step(step, params, opt.init(params)),
    }


def eager_figures(hk) -> dict:
    """Microseconds per un-jitted apply, minus the same math in plain jax.numpy."""
    x = jnp.ones([1, 8])
    out = {}
    linear = hk.without_apply_rng(hk.transform(lambda x: hk.Linear(8)(x)))
    mlp10 = hk.without_apply_rng(hk.transform(lambda x: hk.nets.MLP([8] * 10)(x)))
    for name, f, layers in (("linear", linear, 1), ("mlp10", mlp10, 10)):
        params = f.init(jax.random.PRNGKey(0), x)
        weights = [(v["w"], v["b"]) for v in params.values()]

        def plain():
            h = x
            for i, (w, b) in enumerate(weights):
                h = jnp.dot(h, w) + jnp.broadcast_to(b, (h.shape[0], b.shape[0]))
                if i < len(weights) - 1:
                    h = jax.nn.relu(h)
            return h

        number = 200 if layers == 1 else 40
        for fn in (lambda: f.apply(params, x), plain):
            for _ in range(20):
                fn()
        library = min(timeit.repeat(lambda: f.apply(params, x), number=number, repeat=5)) / number
        baseline = min(timeit.repeat(plain, number=number, repeat=5)) / number
        out[f"eager_{name}_overhead_us"] = 1e6 * (library - baseline)
    return out


def layer_stack_figures(hk) -> dict:
    """Compile time (trace + lower + compile of apply) of N layers: layer_stack, an unrolled
    loop, and hk.scan."""
    x = jnp.ones([4, 64])
    out = {}

    def layer(x):
        return jax.nn.relu(hk.Linear(64)(x))

    for depth in (4, 16, 64):
        variants = {
            "layer_stack": lambda x: hk.layer_stack(depth)(layer)(x),
            "unrolled": lambda x: _unrolled(layer, x, depth),
            # One layer's parameters shared by every step (hk.scan has no per-step params).
            "hk_scan": lambda x: hk.scan(lambda h, _: (layer(h), None), x, None,
                                         length=depth)[0],
        }
        for variant, fn in variants.items():
            try:
                params = jax.eval_shape(hk.transform(fn).init, jax.random.PRNGKey(0), x)
            except Exception as error:  # e.g. a library whose hk.scan cannot create params
                print(f"{variant} {depth} failed: {error!r:.200}", file=sys.stderr)
                continue

            def compile_once(fn=fn, params=params):
                jax.jit(hk.transform(fn).apply).lower(params, None, x).compile()
            out[f"{variant}_{depth}_compile_ms"] = 1e3 * _best(compile_once, repeats=1)
    return out


def _unrolled(layer, x, depth):
    for _ in range(depth):
        x = layer(x)
    return x


def wrapper_figures(hk) -> dict:
    """Trace time of apply using hk.vmap / hk.scan / hk.remat around an MLP block."""
    x = jnp.ones([16, 8, 64])
    out = {}

    def block(h):
        return hk.nets.MLP([64, 64])(h)

    cases = {
        "vmap": lambda xs: hk.vmap(block, split_rng=False)(xs),
        "scan": lambda xs: hk.scan(lambda c, h: (c, block(h)), 0., xs)[1],
        "remat": lambda xs: hk.remat(block)(xs),
    }
    for name, fn in cases.items():
        try:
            params = hk.transform(fn).init(jax.random.PRNGKey(0), x)
            out[f"{name}_trace_ms"] = 1e3 * _best(
                lambda fn=fn: jax.jit(hk.transform(fn).apply).lower(params, None, x), repeats=5)
        except Exception as error:  # dm-haiku names scan bodies differently at init and apply
            print(f"{name} failed: {error!r:.200}", file=sys.stderr)
    return out


def plain_wrapper_figures() -> dict:
    """The same computations as ``wrapper_figures`` on pure JAX functions (baseline)."""
    import senryu
    x = jnp.ones([16, 8, 64])
    pure = senryu.without_apply_rng(senryu.transform(lambda h: senryu.nets.MLP([64, 64])(h)))
    params = pure.init(jax.random.PRNGKey(0), x[0])
    cases = {
        "vmap": lambda p, xs: jax.vmap(lambda h: pure.apply(p, h))(xs),
        "scan": lambda p, xs: jax.lax.scan(lambda c, h: (c, pure.apply(p, h)), 0., xs)[1],
        "remat": lambda p, xs: jax.checkpoint(lambda h: pure.apply(p, h))(xs),
    }
    return {f"{name}_trace_ms": 1e3 * _best(
        lambda fn=fn: jax.jit(lambda p, xs: fn(p, xs)).lower(params, x), repeats=5)
        for name, fn in cases.items()}


def override_figures(active: bool) -> dict:
    """Microseconds per plain ``jax.vmap`` + ``jax.lax.scan`` call outside any transform."""
    import senryu
    x = jnp.arange(8.)
    f = lambda x: jax.vmap(lambda y: y * 2.)(x)  # noqa: E731
    g = lambda x: jax.lax.scan(lambda c, y: (c + y, c), 0., x)  # noqa: E731

    def run():
        f(x)
        g(x)
    if active:
        with senryu.experimental.override_jax_transforms():
            for _ in range(10):
                run()
            seconds = min(timeit.repeat(run, number=50, repeat=5)) / 50
    else:
        for _ in range(10):
            run()
        seconds = min(timeit.repeat(run, number=50, repeat=5)) / 50
    return {"plain_jax_call_us": 1e6 * seconds}


GROUPS = {
    "mlp": lambda lib: (pure_figures("mlp") if lib == "jax" else
                        model_figures(_library(lib), "mlp")),
    "transformer": lambda lib: (pure_figures("transformer") if lib == "jax" else
                                model_figures(_library(lib), "transformer")),
    "resnet50": lambda lib: model_figures(_library(lib), "resnet50"),
    "eager": lambda lib: eager_figures(_library(lib)),
    "layer_stack": lambda lib: layer_stack_figures(_library(lib)),
    "wrappers": lambda lib: (plain_wrapper_figures() if lib == "jax" else
                             wrapper_figures(_library(lib))),
    "override": lambda lib: override_figures(active=(lib == "senryu")),
}

if __name__ == "__main__":
    lib, group = sys.argv[1], sys.argv[2]
    print(json.dumps({"lib": lib, "group": group, "values": GROUPS[group](lib)}))
