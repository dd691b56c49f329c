"""The JAX functions the wrappers build on, captured when senryu is imported.

``hk.experimental.override_jax_transforms`` may replace ``jax.vmap``, ``jax.lax.scan``... with
dispatchers that call our wrappers; the wrappers must reach the real JAX functions, so they call
these references and never ``jax.<name>`` by attribute.
"""

import jax

jit = jax.jit
vmap = jax.vmap
grad = jax.grad
value_and_grad = jax.value_and_grad
jacfwd = jax.jacfwd
jacrev = jax.jacrev
hessian = jax.hessian
jvp = jax.jvp
vjp = jax.vjp
linearize = jax.linearize
eval_shape = jax.eval_shape
checkpoint = jax.checkpoint
named_call = jax.named_call
scan = jax.lax.scan
cond = jax.lax.cond
switch = jax.lax.switch
fori_loop = jax.lax.fori_loop
while_loop = jax.lax.while_loop
map = jax.lax.map  # noqa: A001
