"""Run inside a network namespace by ``test_legacy_scripts``: start a 2020-form script (and the
det model server on 9293 when asked) with the project's venv as a user would, send it the
requests, write the answers and the servers' output as JSON.

Usage: python drive_legacy.py CONFIG.json ANSWERS.json (run in the folder of the model folders).
"""

import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor

import httpx

from pdserving.launcher import ServerProcess

URL = "http://127.0.0.1:9292/ocr/prediction"


def main(config_path: str, answers_path: str) -> None:
    with open(config_path) as f:
        cfg = json.load(f)
    # No PYTHONPATH: the packages must import from the venv, in any folder.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    servers = []
    out: dict = {"answers": []}
    try:
        if cfg.get("det_server"):
            det = ServerProcess([sys.executable, "-m", "paddle_serving_server.serve", "--model",
                                 "ocr_det_model", "--port", "9293"], "det model server", env=env)
            servers.append(det)
            det.start(timeout=120)
        web = ServerProcess([sys.executable, *cfg["argv"]], "2020 script", env=env)
        servers.append(web)
        web.start(timeout=120)
        with httpx.Client(timeout=120) as client:
            def post(body: str) -> list:
                r = client.post(URL, content=body.encode(),
                                headers={"Content-Type": "application/json"})
                return [r.status_code, r.json()]

            with ThreadPoolExecutor(cfg.get("concurrency", 1)) as pool:
                out["answers"] = list(pool.map(post, cfg["bodies"]))
    except Exception as e:
        out["error"] = f"{type(e).__name__}: {e}"
    finally:
        for server in reversed(servers):
            server.stop()
        out["output"] = {s.name: s.output for s in servers}
        with open(answers_path, "w") as f:
            json.dump(out, f)


if __name__ == "__main__":
    main(*sys.argv[1:])
