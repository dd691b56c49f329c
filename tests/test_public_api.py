"""Every public name the project promises (the list of ../shared/API.md, copied here because CI
checks out the repository alone) exists in senryu, and wherever dm-haiku 0.0.17 has the name too,
it is the same kind of object (class, function, module or constant)."""

import inspect

import haiku
import pytest

import senryu as hk

API = {
    "": """transform transform_with_state multi_transform multi_transform_with_state
        without_apply_rng without_state with_empty_state running_init Transformed
        TransformedWithState MultiTransformed MultiTransformedWithState Params State
        MutableParams MutableState Module to_module transparent get_parameter get_state
        set_state get_params get_current_state get_initial_state DO_NOT_STORE current_name
        force_name Deferred ModuleProtocol SupportsCall custom_creator custom_getter
        custom_setter GetterContext SetterContext intercept_methods MethodContext PRNGSequence
        next_rng_key next_rng_keys maybe_next_rng_key reserve_rng_keys with_rng
        maybe_get_rng_sequence_state replace_rng_sequence_state cond switch scan fori_loop
        while_loop map jit vmap grad value_and_grad remat eval_shape lift lift_with_state
        LiftWithStateUpdater transparent_lift transparent_lift_with_state name_scope name_like
        layer_stack LayerStackTransparencyMapping Linear Bias Sequential dropout one_hot
        multinomial BatchApply expand_apply Reshape Flatten Embed EmbedLookupStyle ConvND
        Conv1D Conv2D Conv3D ConvNDTranspose Conv1DTranspose Conv2DTranspose Conv3DTranspose
        DepthwiseConv1D DepthwiseConv2D DepthwiseConv3D SeparableDepthwiseConv2D
        get_channel_index avg_pool AvgPool max_pool MaxPool BatchNorm LayerNorm InstanceNorm
        GroupNorm RMSNorm SpectralNorm SNParamsTree ExponentialMovingAverage EMAParamsTree
        MultiHeadAttention RNNCore VanillaRNN LSTM LSTMState GRU Conv1DLSTM Conv2DLSTM
        Conv3DLSTM DeepRNN deep_rnn_with_skip_connections ResetCore IdentityCore static_unroll
        dynamic_unroll""",
    "nets": """MLP MobileNetV1 ResNet ResNet18 ResNet34 ResNet50 ResNet101 ResNet152 ResNet200
        VectorQuantizer VectorQuantizerEMA""",
    "nets.ResNet": "BlockGroup BlockV1 BlockV2",
    "initializers": """Initializer Constant Identity Orthogonal RandomNormal RandomUniform
        TruncatedNormal UniformScaling VarianceScaling""",
    "pad": """PadFn is_padfn create create_from_padfn create_from_tuple causal full
        reverse_causal same valid""",
    "mixed_precision": "set_policy get_policy current_policy clear_policy push_policy",
    "experimental": """named_call profiler_name_scopes to_dot abstract_to_dot tabulate
        eval_summary ArraySpec MethodInvocation ModuleDetails name_scope name_like lift
        lift_with_state LiftWithStateUpdater optimize_rng_use layer_stack check_jax_usage
        fast_eval_shape module_auto_repr rng_reserve_size ParamContext jaxpr_info""",
    "data_structures": """filter is_subset map merge partition partition_n to_haiku_dict
        to_immutable_dict to_mutable_dict traverse tree_bytes tree_size""",
    "testing": "transform_and_run",
    "config": "context set",
}
NAMES = [(space, name) for space, names in API.items() for name in names.split()]


def _resolve(lib, space, name):
    obj = lib
    for part in [p for p in space.split(".") if p] + [name]:
        obj = getattr(obj, part)
    return obj


def _kind(obj):
    if inspect.ismodule(obj):
        return "module"
    if inspect.isclass(obj):
        return "class"
    if callable(obj):
        return "callable"
    return "value"


@pytest.mark.parametrize("space,name", NAMES, ids=[f"{s}.{n}".lstrip(".") for s, n in NAMES])
def test_public_name_exists_like_in_haiku(space, name):
    ours = _resolve(hk, space, name)
    try:
        theirs = _resolve(haiku, space, name)
    except AttributeError:
        return  # a name of senryu's own
    assert _kind(ours) == _kind(theirs), (_kind(ours), _kind(theirs))


def test_param_context_is_the_getter_context_like_in_haiku():
    assert hk.experimental.ParamContext is hk.GetterContext
    assert haiku.experimental.ParamContext is haiku.GetterContext
