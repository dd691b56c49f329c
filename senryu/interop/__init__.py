"""Interoperation with plain JAX: ``override_jax_transforms`` and the leak checks."""

from senryu.core.jax_usage import JaxUsageError
from senryu.interop.override import is_active, override_jax_transforms
