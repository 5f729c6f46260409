"""What the hypothesis fuzzers of the servers share (tests/rpc/test_fuzz.py,
tests/pipeline_serving/test_fuzz.py): settings that CI can reproduce, and any JSON value."""

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# Derandomized and without a database: each run tries the same examples, so a failure in CI
# fails again on a laptop. No deadline: the machine is shared and the servers are real.
FUZZ = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

json_value = st.recursive(st.none() | st.booleans() | st.integers() | st.floats()
                          | st.text(max_size=5),
                          lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                          max_leaves=10)
