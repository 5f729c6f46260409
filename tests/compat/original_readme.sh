#!/bin/sh
# PaddleOCR's 2020 deploy/pdserving README (readme_en.md): its commands in its order, as written.
#
# Lines under "harness:" are not in it. They start in the background what the README runs in a
# terminal of its own, wait for its "ready on" line, stop it, and mark each client run in the
# output ("== NAME") for tests/compat/test_original_readme.py, which runs this script in a
# folder holding the kit's scripts and samples/, with the venv's python first on PATH, in a
# network namespace of its own (9292 and 9293 are fixed). Two steps cannot run as written, and
# say why where they stand.
set -eu

# harness: run "$@" in the background, its output in $1.log; wait for its ready line
started() {
    log="$1.log"
    shift
    "$@" >"$log" 2>&1 &
    pid=$!
    i=0
    until grep -q " ready on " "$log"; do
        if ! kill -0 "$pid" 2>/dev/null || [ "$i" -ge 1200 ]; then
            echo "harness: $* did not start:" >&2
            cat "$log" >&2
            exit 1
        fi
        i=$((i + 1))
        sleep 0.1
    done
    PIDS="$pid ${PIDS:-}"
}
# harness: stop what started() started, and wait for it to end
stop_all() {
    for pid in ${PIDS:-}; do kill "$pid" 2>/dev/null || true; done
    for pid in ${PIDS:-}; do wait "$pid" 2>/dev/null || true; done
    PIDS=""
}
trap stop_all EXIT
# harness: a gpu form on a machine with no GPU must end at once with a one-line error
no_gpu() {
    if "$@" 2>gpu.err; then
        echo "harness: $* started without a GPU" >&2
        exit 1
    fi
    if [ "$(grep -c . gpu.err)" != 1 ] || ! grep -q "^error: GPU requested" gpu.err; then
        echo "harness: $* did not end with a one-line error:" >&2
        cat gpu.err >&2
        exit 1
    fi
}

### 1. Prepare the environment
# Not run: these packages have no wheels for today's Python. The kit's own install
# (`make install`, README) puts pdserving and the same package names into .venv.
#   python -m pip install paddle_serving_server_gpu
#   python -m pip install paddle_serving_server
#   python -m pip install paddle_serving_app paddle_serving_client

### 2. Model transformation
python -m paddle_serving_app.package --get_model ocr_rec
tar -xzvf ocr_rec.tar.gz
python -m paddle_serving_app.package --get_model ocr_det
tar -xzvf ocr_det.tar.gz

# Not run: the download (no network here, and the model is gone from its server). The test
# puts a tarball of the same layout here instead: ch_rec_r34_vd_crnn/ holding `model` and
# `params`, a copy of the bundled PP-OCRv4 rec inference model.
#   wget --no-check-certificate https://paddleocr.bj.bcebos.com/ch_models/ch_rec_r34_vd_crnn_infer.tar
tar xf ch_rec_r34_vd_crnn_infer.tar

python - <<'EOF'
from paddle_serving_client.io import inference_model_to_serving
inference_model_dir = "ch_rec_r34_vd_crnn"
serving_client_dir = "serving_client_dir"
serving_server_dir = "serving_server_dir"
feed_var_names, fetch_var_names = inference_model_to_serving(
        inference_model_dir, serving_client_dir, serving_server_dir, model_filename="model", params_filename="params")
# harness: what the call returned, for the test
import json; json.dump([list(feed_var_names), list(fetch_var_names)], open("converted.json", "w"))
EOF

### 3. Start service
## Mode 1. Start the standard mode service
# start with CPU
started det python -m paddle_serving_server.serve --model ocr_det_model --port 9293
started web python ocr_web_server.py cpu

## Send prediction requests
echo "== standard"
python ocr_web_client.py
stop_all

# or, with GPU
no_gpu python -m paddle_serving_server_gpu.serve --model ocr_det_model --port 9293 --gpu_id 0
no_gpu python ocr_web_server.py gpu

## Mode 2. Start the fast mode service
# start with CPU
started fast python ocr_local_server.py cpu

## Send prediction requests
echo "== fast"
python ocr_web_client.py
stop_all

# or, with GPU
no_gpu python ocr_local_server.py gpu

## User defined service module modification: det or rec alone, standard and fast
for script in det_web_server.py det_local_server.py rec_web_server.py rec_local_server.py; do
    started "$script" python "$script" cpu
    echo "== $script"
    python ocr_web_client.py
    stop_all
done
echo "== done"
