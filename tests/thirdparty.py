"""A stand-in for third-party numerical code: written against plain JAX only, never senryu."""

import jax
import jax.numpy as jnp


def fixed_point(f, x0, tol=1e-6, max_iter=100):
    """Iterates ``x = f(x)`` with ``jax.lax.while_loop`` until it stops moving."""
    def cond(carry):
        x, previous, i = carry
        return (jnp.max(jnp.abs(x - previous)) > tol) & (i < max_iter)

    def body(carry):
        x, _, i = carry
        return f(x), x, i + 1

    x, _, iterations = jax.lax.while_loop(cond, body, (f(x0), x0, 1))
    return x, iterations


def odeint_euler(f, y0, ts):
    """Integrates ``dy/dt = f(y, t)`` with explicit Euler steps in ``jax.lax.scan``."""
    def step(y, t_pair):
        t0, t1 = t_pair
        y = y + (t1 - t0) * f(y, t0)
        return y, y

    _, ys = jax.lax.scan(step, y0, (ts[:-1], ts[1:]))
    return ys


def fisher_diagonal(log_likelihood, x, samples):
    """Empirical Fisher diagonal w.r.t. ``x``: mean of squared per-sample gradients."""
    per_sample = jax.vmap(jax.grad(log_likelihood), in_axes=(None, 0))(x, samples)
    return jnp.mean(per_sample ** 2, axis=0)


def shape_checked_jit(f, x):
    """Checks the output shape with ``jax.eval_shape``, then runs ``jax.jit(f)``."""
    out_shape = jax.eval_shape(f, x)
    out = jax.jit(f)(x)
    assert out.shape == out_shape.shape
    return out
