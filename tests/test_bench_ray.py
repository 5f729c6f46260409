"""The Ray Serve benchmark (bench/ray_service.py): its pure parts only (config variants, run
order, ratios, memory grouping, the report). A real run starts a Ray cluster per variant and
takes about a minute even with tiny counts: too slow for the suite."""

import argparse
from collections import Counter

import pytest

from bench import data
from bench import ray_service as rs
from bench.load import LoadResult

MiB = 1 << 20


def load(c: int, p50: float, images_per_s: float, n: int = 10) -> LoadResult:
    return LoadResult(c, [p50] * n, Counter(), n / images_per_s, 100 * MiB)


def measured(name: str, round_: int, c1_p50: float, c4_tput: float) -> rs.Measured:
    m = rs.Measured(name, round_, {1: load(1, c1_p50, 1 / c1_p50), 4: load(4, 0.8, c4_tput)})
    if name != "fast":
        m.start_s, m.ready_s = 4.0, 9.5
        m.memory = [("ray::ServeReplica:ocr:det", 11, 300 * MiB),
                    ("ray::ServeReplica:ocr:rec", 12, 250 * MiB),
                    ("ray::ServeReplica:ocr:ingress", 13, 150 * MiB),
                    ("raylet", 14, 20 * MiB), ("python log_monitor.py", 15, 40 * MiB),
                    ("ray::ServeController", 16, 80 * MiB)]
        m.probe = {"det": (0.1, 0.07), "rec": (0.04, 0.03)}
        m.replicas = {"det": {"RUNNING": 1}, "rec": {"RUNNING": 1, "PENDING_ALLOCATION": 2},
                      "ingress": {"RUNNING": 1}}
    return m


@pytest.mark.ray
def test_fixed_variant_config_from_the_shipped_file(tmp_path):
    pytest.importorskip("ray")
    config = rs.VARIANTS["fixed-2t"].config(18555, tmp_path)
    assert config["http_options"]["port"] == 18555
    app = config["applications"][0]
    assert app["args"]["threads"] == 2 and app["args"]["model_root"] == str(tmp_path)
    deps = {d["name"]: d for d in app["deployments"]}
    for name in ("det", "rec"):
        assert deps[name]["num_replicas"] == 1 and "autoscaling_config" not in deps[name]
    shipped = rs.VARIANTS["shipped"].config(18556, tmp_path)["applications"][0]
    assert all("autoscaling_config" in d for d in shipped["deployments"] if d["name"] != "ingress")


def test_rounds_alternate_the_order():
    assert rs.run_order(["a", "b"], 3) == [
        (1, "fast"), (1, "a"), (1, "b"), (2, "b"), (2, "a"), (2, "fast"),
        (3, "fast"), (3, "a"), (3, "b")]


def test_unknown_variant_is_refused():
    with pytest.raises(SystemExit):
        rs.parse_args(["--variants", "shipped,nope"])
    assert rs.parse_args([]).variants == rs.DEFAULT_VARIANTS.split(",")


def test_ratios_and_verdicts_within_each_round():
    results = [measured("fast", 1, 0.200, 5.0), measured("shipped", 1, 0.240, 4.0),
               measured("fixed-2t", 1, 0.220, 4.5),
               measured("fixed-2t", 2, 0.260, 4.0), measured("fast", 2, 0.250, 4.0)]
    p50, tput = rs.ratios(results[0], results[1])
    assert p50 == pytest.approx(1.2) and tput == pytest.approx(0.8)
    assert "misses" in rs.verdict(results, "shipped")
    assert rs.verdict(results, "fixed-2t") == "**meets both targets**"  # 1.1/0.9, 1.04/1.0
    assert rs.verdict(results, "auto-2t") == "not compared"


def test_replica_watch_keeps_the_most_seen_per_state():
    watch = rs.ReplicaWatch.__new__(rs.ReplicaWatch)
    watch.seen = rs.defaultdict(dict)
    watch.note({"rec": {"RUNNING": 1, "STARTING": 2}})
    watch.note({"rec": {"RUNNING": 2}, "det": {"RUNNING": 1}})
    assert watch.seen == {"rec": {"RUNNING": 2, "STARTING": 2}, "det": {"RUNNING": 1}}
    assert rs.replica_text(watch.seen["rec"]) == "2 RUNNING + 2 STARTING"


def test_memory_groups_replicas_first():
    rows = [("python monitor.py", 1, 5), ("raylet", 2, 7), ("ray::ServeReplica:ocr:rec", 3, 10),
            ("ray::ServeReplica:ocr:det", 4, 20), ("ray::ServeReplica:ocr:det", 5, 30)]
    assert rs.group_memory(rows) == [("ray::ServeReplica:ocr:det", 2, 50),
                                     ("ray::ServeReplica:ocr:rec", 1, 10), ("raylet", 1, 7),
                                     ("python monitor.py", 1, 5)]


def test_report_has_every_section_and_the_verdicts():
    results = [measured("fast", 1, 0.200, 5.0), measured("shipped", 1, 0.240, 4.0),
               measured("fixed-2t", 1, 0.220, 4.5)]
    results[1].leftover = ["raylet (pid 14)"]
    args = argparse.Namespace(quick=False, rounds=1, variants=["shipped", "fixed-2t"],
                              requests=10, warmup=1)
    images = [data.BenchImage("a.png", b"", 300, 400), data.BenchImage("b.png", b"", 900, 20)]
    text = rs.render(args, {"date": "today", "CPU": "x"}, images, results, 60.0,
                     "## Notes\n\nkept\n")
    for heading in ("## Variants", "## Targets of issue 9", "## Loads", "## Start", "## Memory",
                    "## Where the time goes", "## Checks"):
        assert heading in text
    assert "| shipped | round 1: c=1 p50 ray / fast | 1.2 | <= 1.15 | **FAIL** |" in text
    assert "| fixed-2t | round 1: c=4 images/s ray / fast | 0.9 | >= 0.85 | pass |" in text
    assert "| 1 | ray shipped | 4.0 | 9.5 | 13.5 |" in text
    assert "| 1 | ray shipped | replicas (det, rec, ingress) |  | 700 |" in text
    assert "| 1 | ray shipped | **total** | 6 | **840** |" in text
    assert "| 1 | ray shipped | rec | 1 RUNNING + 2 PENDING_ALLOCATION |" in text
    assert "left behind and killed: raylet (pid 14)" in text
    assert text.endswith("## Notes\n\nkept\n")
