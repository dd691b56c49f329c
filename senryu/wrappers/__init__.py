"""JAX transforms and control flow that carry module state: thin layers over ``core.PureFunction``."""

from senryu.core.lifting import (
    LiftWithStateUpdater,
    lift,
    lift_with_state,
    transparent_lift,
    transparent_lift_with_state,
)
from senryu.wrappers.control_flow import cond, fori_loop, map, scan, switch, while_loop
from senryu.wrappers.layer_stack import LayerStackTransparencyMapping, layer_stack
from senryu.wrappers.transforms import (
    checkpoint,
    eval_shape,
    grad,
    jit,
    named_call,
    remat,
    value_and_grad,
    vmap,
)
