"""Settings shared by the whole test suite (tests/ and the doctests in senryu/)."""

import os

import hypothesis

# The suite compiles thousands of small XLA programs and runs each once or twice: XLA's LLVM
# optimisations of the CPU code cost more than they save here (measured: the integration and conv
# tests take 103 s instead of 154 s without them). They change no HLO-level decision, and every
# comparison (with dm-haiku, eager against jit) runs under the same flags. Set before JAX starts
# its backend; a developer's own XLA_FLAGS are kept.
_FAST_COMPILE_FLAGS = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_FAST_COMPILE_FLAGS}".strip()

# The first call of a jitted function compiles it, which can take far longer than hypothesis's
# default 200 ms deadline on a busy 2-core machine: time limits would only make tests flaky.
hypothesis.settings.register_profile("senryu", deadline=None, print_blob=True)
hypothesis.settings.load_profile("senryu")
