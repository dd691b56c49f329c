"""The core of senryu: the only code that owns parameters, state, random keys and names.

Everything else (wrappers, layers, nets) is built on the names exported here.
"""

from senryu.core.frame import StatePair, inside_transform
from senryu.core.module import (
    CallableModule,
    Deferred,
    MethodContext,
    Module,
    ModuleProtocol,
    SupportsCall,
    current_name,
    force_name,
    install_interceptor,
    intercept_methods,
    name_like,
    name_scope,
    to_module,
    transparent,
)
from senryu.core.lifting import (
    LiftWithStateUpdater,
    lift,
    lift_with_state,
    transparent_lift,
    transparent_lift_with_state,
)
from senryu.core.params import (
    DO_NOT_STORE,
    GetterContext,
    SetterContext,
    custom_creator,
    custom_getter,
    custom_setter,
    get_current_state,
    get_initial_state,
    get_parameter,
    get_params,
    get_state,
    running_init,
    set_state,
)
from senryu.core.purify import (
    Boundary,
    PureFunction,
    capture,
    commit,
    count_rng_draws,
    run_and_commit,
)
from senryu.core.rng import (
    MissingRNGError,
    PRNGSequence,
    maybe_get_rng_sequence_state,
    maybe_next_rng_key,
    next_rng_key,
    next_rng_keys,
    replace_rng_sequence_state,
    reserve_rng_keys,
    with_rng,
)
from senryu.core.transform import (
    MultiTransformed,
    MultiTransformedWithState,
    MutableParams,
    MutableState,
    Params,
    State,
    Transformed,
    TransformedWithState,
    multi_transform,
    multi_transform_with_state,
    transform,
    transform_with_state,
    with_empty_state,
    without_apply_rng,
    without_state,
)
