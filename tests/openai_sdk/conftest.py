"""Starts the real `ember serve` for the SDK tests.

The Rust test `tests/openai_sdk.rs` runs pytest here with EMBER_BIN (the built binary) and
EMBER_BACKENDS (e.g. "cpu,wgpu"); run by hand with those two variables set. Each backend gets
one server on a free port, shared by the tests of a module.
"""

import os
import re
import subprocess
import threading
import time

import pytest
import requests

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "tests", "fixtures", "models")


class EmberServer:
    def __init__(self, model, backend, extra=()):
        binary = os.environ["EMBER_BIN"]
        cmd = [binary, "serve", os.path.join(FIXTURES, model), "--backend", backend, "--host", "127.0.0.1",
               "--port", "0", "--dtype", "float32", "--max-model-len", "256",
               "--kv-cache-memory-bytes", "8388608", "--served-model-name", "tiny", *extra]
        env = dict(os.environ)
        env.pop("EMBER_API_KEY", None)
        env.setdefault("EMBER_WGPU_DEVICE", "cpu")
        self.proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
        self.log = []
        port = []
        ready = threading.Event()

        def pump():
            for line in self.proc.stderr:
                self.log.append(line)
                m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
                if m and not port:
                    port.append(int(m.group(1)))
                    ready.set()
            ready.set()

        threading.Thread(target=pump, daemon=True).start()
        if not ready.wait(120) or not port:
            self.stop()
            raise RuntimeError("ember serve did not start:\n" + "".join(self.log))
        self.base = f"http://127.0.0.1:{port[0]}"
        deadline = time.time() + 300
        while time.time() < deadline:
            try:
                if requests.get(self.base + "/health", timeout=5).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            if self.proc.poll() is not None:
                raise RuntimeError("ember serve exited:\n" + "".join(self.log))
            time.sleep(0.05)
        raise RuntimeError("ember serve not ready")

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def backends():
    return [b for b in os.environ.get("EMBER_BACKENDS", "cpu").split(",") if b]


@pytest.fixture(scope="module", params=backends())
def server(request):
    s = EmberServer("llama3", request.param)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def keyed_server():
    s = EmberServer("qwen2", "cpu", ["--api-key", "sk-ember-test"])
    yield s
    s.stop()
