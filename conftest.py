"""Settings shared by the whole test suite (tests/ and the doctests in senryu/)."""

import hypothesis

# The first call of a jitted function compiles it, which can take far longer than hypothesis's
# default 200 ms deadline on a busy 2-core machine: time limits would only make tests flaky.
hypothesis.settings.register_profile("senryu", deadline=None, print_blob=True)
hypothesis.settings.load_profile("senryu")
