"""``metrics.timed``: a model keeps its results and its calls are counted and timed."""

import numpy as np
from prometheus_client import REGISTRY

from pdserving import metrics


def test_timed_model_returns_its_output_and_records_each_call():
    def sample(name: str) -> float:
        return REGISTRY.get_sample_value("pdserving_model_inference_seconds_count",
                                         {"model": name}) or 0.0

    before = sample("test-double")
    model = metrics.timed(lambda batch: batch * 2, "test-double")
    np.testing.assert_array_equal(model(np.ones((1, 3))), np.full((1, 3), 2.0))
    model(np.zeros(2))
    assert sample("test-double") == before + 2
