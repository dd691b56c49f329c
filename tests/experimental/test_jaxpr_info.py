"""Tests of ``hk.experimental.jaxpr_info``, compared with dm-haiku where it is installed."""

import jax
import jax.numpy as jnp
import pytest

import senryu

haiku = pytest.importorskip("haiku")


def _models(hk):
    class Outer(hk.Module):
        def __init__(self, name=None):
            super().__init__(name=name)
            self.inner = hk.Linear(2)

        def __call__(self, x):
            return self.inner(x)

        def enc(self, x):
            return hk.Linear(2, name="lin")(x) * 2

    def outer(x):
        o = Outer()
        return o.inner(x) + o.enc(x) + o(x)

    def mlp(x):
        return hk.nets.MLP([3, 2])(x)

    def conv(x):
        x = hk.Conv2D(4, 3)(x)
        # Eval mode at apply: in training mode the text is identical too (see
        # test_training_batch_norm_text_same_as_haiku), but one jaxpr variable is numbered
        # differently (dm-haiku's moving average makes one more intermediate value).
        x = hk.BatchNorm(True, True, 0.9)(x, is_training=hk.running_init())
        return hk.Linear(2)(jax.nn.relu(x).reshape(x.shape[0], -1))

    def sequential(x):
        return hk.Sequential([hk.Linear(3), jax.nn.relu, hk.Linear(3)])(x)

    def control_flow(x):
        x = hk.Linear(3)(x)
        x = jax.lax.scan(lambda c, _: (jnp.sin(c), None), x, None, length=2)[0]
        x = jax.lax.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, c[1] * 2), (0, x))[1]
        x = jax.checkpoint(jnp.exp)(x) + jax.vmap(lambda a: a + 1)(x)
        return jax.jit(lambda a: jax.jit(jnp.cos)(a) + 1)(x)

    return {"outer": (outer, [1, 3]), "mlp": (mlp, [1, 4]), "conv": (conv, [2, 5, 5, 3]),
            "sequential": (sequential, [1, 3]), "control_flow": (control_flow, [1, 3])}


def _flops(eqn, expression):
    return 0 if expression.primitive == "add" else 1000 + 37 * len(expression.details)


def _info(hk, model, **kwargs):
    fn, shape = _models(hk)[model]
    f = hk.transform_with_state(fn)
    x = jnp.ones(shape)
    params, state = f.init(jax.random.PRNGKey(0), x)
    return hk.experimental.jaxpr_info.make_model_info(f.apply, **kwargs)(params, state, None, x)


@pytest.mark.parametrize("model", ["outer", "mlp", "conv", "sequential", "control_flow"])
@pytest.mark.parametrize("kwargs", [{}, {"compute_flops": _flops}, {"include_module_info": False}],
                         ids=["plain", "flops", "no_module_info"])
def test_same_as_haiku(model, kwargs):
    expected = _info(haiku, model, **kwargs)
    actual = _info(senryu, model, **kwargs)
    assert (senryu.experimental.jaxpr_info.format_module(actual)
            == haiku.experimental.jaxpr_info.format_module(expected))
    assert repr(actual).replace("senryu", "") == repr(expected).replace("haiku", "")


def test_mlp_text():
    f = senryu.transform(lambda x: senryu.nets.MLP([3, 2])(x))
    x = jnp.ones([1, 4])
    params = f.init(jax.random.PRNGKey(0), x)
    info = senryu.experimental.jaxpr_info.make_model_info(f.apply)(params, None, x)
    assert senryu.experimental.jaxpr_info.format_module(info) == """\
apply_fn
  mlp 23 params
    linear_0 15 params
      dot_general in f32[1,4], f32[4,3], out f32[1,3]
      broadcast_in_dim in f32[3], out f32[1,3]
      add in f32[1,3], f32[1,3], out f32[1,3]
    custom_jvp
      relu
        max in f32[1,3], f32[], out f32[1,3]
    linear_1 8 params
      dot_general in f32[1,3], f32[3,2], out f32[1,2]
      broadcast_in_dim in f32[2], out f32[1,2]
      add in f32[1,2], f32[1,2], out f32[1,2]
"""
    mlp = info.expressions[0].submodule
    assert mlp.param_info == {"./linear_0/b": "f32[3]", "./linear_0/w": "f32[4,3]",
                              "./linear_1/b": "f32[2]", "./linear_1/w": "f32[3,2]"}


def test_state_counts_match_haiku_in_training():
    def counts(hk):
        def fn(x):
            return hk.BatchNorm(True, True, 0.9)(hk.Conv2D(4, 3)(x), is_training=True)
        f = hk.transform_with_state(fn)
        x = jnp.ones([2, 5, 5, 3])
        params, state = f.init(jax.random.PRNGKey(0), x)
        info = hk.experimental.jaxpr_info.make_model_info(f.apply)(params, state, None, x)
        out = []

        def walk(module):
            out.append((module.name, module.total_param_size, module.total_state_size,
                        module.state_info))
            for e in module.expressions:
                if e.submodule is not None:
                    walk(e.submodule)
        walk(info)
        return out

    assert counts(senryu) == counts(haiku)
    assert ("batch_norm", 8, 18) in [c[:3] for c in counts(senryu)]


def test_training_batch_norm_text_same_as_haiku():
    """The moving averages' zero-debias step is dm-haiku's own operation (pow f32, int32)."""
    texts = []
    for lib in (senryu, haiku):
        f = lib.transform_with_state(
            lambda x: lib.BatchNorm(True, True, 0.9)(x, is_training=True))
        x = jnp.ones([2, 3])
        params, state = f.init(jax.random.PRNGKey(0), x)
        texts.append(lib.experimental.jaxpr_info.format_module(
            lib.experimental.jaxpr_info.make_model_info(f.apply)(params, state, None, x)))
    assert texts[0] == texts[1]
    assert "pow in f32[], int32[], out f32[]" in texts[0]


def test_compute_flops_and_formatting():
    info = _info(senryu, "mlp", compute_flops=lambda eqn, expression: 600)
    text = senryu.experimental.jaxpr_info.format_module(info)
    assert text.splitlines()[0] == "apply_fn 4.2 kflops"
    assert "    linear_0 1.8 kflops 15 params" in text.splitlines()
    assert info.flops == 4200


def test_plain_function_without_modules():
    info = senryu.experimental.jaxpr_info.make_model_info(lambda x: jnp.sin(x) * 2, name="f")(
        jnp.ones([3]))
    assert senryu.experimental.jaxpr_info.format_module(info) == (
        "f\n  sin in f32[3], out f32[3]\n  mul in f32[3], f32[], out f32[3]\n")


def test_html_page_names_every_module():
    info = _info(senryu, "control_flow")
    page = senryu.experimental.jaxpr_info.as_html_page(info)
    for name in ["apply_fn", "linear", "scan length=2 unroll=1", "while", "remat", "vmap()",
                 "&lt;lambda&gt;", "cos", "dot_general"]:
        assert name in page
    assert senryu.experimental.jaxpr_info.css() in page
    assert senryu.experimental.jaxpr_info.js() in page
    assert callable(senryu.experimental.jaxpr_info.css)


def test_bad_arguments():
    with pytest.raises(TypeError, match="expects a function"):
        senryu.experimental.jaxpr_info.make_model_info(3)
    with pytest.raises(TypeError, match="compute_flops"):
        senryu.experimental.jaxpr_info.make_model_info(jnp.sin, compute_flops=5)


def test_interception_is_undone_after_an_exception():
    def fn(x):
        x = senryu.Linear(2)(x)
        if x.shape[0] == 1:
            raise RuntimeError("boom")
        return x

    f = senryu.transform(fn)
    params = f.init(jax.random.PRNGKey(0), jnp.ones([2, 3]))
    with pytest.raises(RuntimeError, match="boom"):
        senryu.experimental.jaxpr_info.make_model_info(f.apply)(params, None, jnp.ones([1, 3]))
    jaxpr = jax.make_jaxpr(f.apply)(params, None, jnp.ones([2, 3]))
    assert all(str(eqn.source_info.name_stack) == "" for eqn in jaxpr.jaxpr.eqns)
