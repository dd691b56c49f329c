"""senryu: neural-network modules for JAX, a drop-in, faster reimplementation of Haiku.

>>> import jax, jax.numpy as jnp, senryu as hk
>>> f = hk.transform(lambda x: hk.nets.MLP([4, 1])(x))
>>> params = f.init(jax.random.PRNGKey(0), jnp.ones([2, 3]))
>>> f.apply(params, None, jnp.ones([2, 3])).shape
(2, 1)
"""

from senryu import config
from senryu import experimental
from senryu import interop
from senryu.core.jax_usage import JaxUsageError
from senryu.core import (
    DO_NOT_STORE,
    Deferred,
    GetterContext,
    MethodContext,
    MissingRNGError,
    Module,
    ModuleProtocol,
    MultiTransformed,
    MultiTransformedWithState,
    MutableParams,
    MutableState,
    Params,
    PRNGSequence,
    SetterContext,
    State,
    SupportsCall,
    Transformed,
    TransformedWithState,
    current_name,
    custom_creator,
    custom_getter,
    custom_setter,
    force_name,
    get_current_state,
    get_initial_state,
    get_parameter,
    get_params,
    get_state,
    intercept_methods,
    maybe_get_rng_sequence_state,
    maybe_next_rng_key,
    multi_transform,
    multi_transform_with_state,
    name_like,
    name_scope,
    next_rng_key,
    next_rng_keys,
    replace_rng_sequence_state,
    reserve_rng_keys,
    running_init,
    set_state,
    to_module,
    transform,
    transform_with_state,
    transparent,
    with_empty_state,
    with_rng,
    without_apply_rng,
    without_state,
)
from senryu.wrappers import (
    LayerStackTransparencyMapping,
    LiftWithStateUpdater,
    cond,
    eval_shape,
    fori_loop,
    grad,
    jit,
    layer_stack,
    lift,
    lift_with_state,
    map,
    remat,
    scan,
    switch,
    transparent_lift,
    transparent_lift_with_state,
    value_and_grad,
    vmap,
    while_loop,
)
from senryu import data_structures
from senryu import initializers
from senryu import mixed_precision
from senryu import pad
from senryu import testing
from senryu.layers import *  # noqa: F401,F403
from senryu import nets
