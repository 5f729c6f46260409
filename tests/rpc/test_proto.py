"""The committed generated modules are exactly what ``make proto`` makes of the .proto files."""

import subprocess
import sys

import pytest

from tests.helpers.paths import ROOT

GENERATED = {
    "pdserving/proto/general_model_service.proto": ["_pb2.py", "_pb2.pyi", "_pb2_grpc.py"],
    "pdserving/proto/general_model_config.proto": ["_pb2.py", "_pb2.pyi"],
    "pdserving/proto/pipeline_service.proto": ["_pb2.py", "_pb2.pyi", "_pb2_grpc.py"],
}


@pytest.mark.parametrize("proto", GENERATED)
def test_generated_code_is_up_to_date(proto, tmp_path):
    outputs = [f"--python_out={tmp_path}", f"--pyi_out={tmp_path}"]
    if "_pb2_grpc.py" in GENERATED[proto]:
        outputs.append(f"--grpc_python_out={tmp_path}")
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I.", *outputs, proto],
                   cwd=ROOT, check=True, timeout=60)
    stem = proto.removesuffix(".proto")
    for suffix in GENERATED[proto]:
        fresh = (tmp_path / (stem + suffix)).read_text()
        assert fresh == (ROOT / (stem + suffix)).read_text(), \
            f"{stem + suffix} is stale: run `make proto`"
