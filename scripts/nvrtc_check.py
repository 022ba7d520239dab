#!/usr/bin/env python3
"""Compiles every kernels/*.cu (with kernels/common.cuh prepended, as the CUDA backend does)
through NVRTC for sm_90a (what cubecl compiles for on Hopper) and prints the compiler log. NVRTC needs no GPU, so kernels can be
checked on a machine without one:

    pip download --no-deps nvidia-cuda-nvrtc nvidia-cuda-runtime -d /tmp/nvrtc
    (cd /tmp/nvrtc && for f in *.whl; do unzip -q -o $f -d x; done)
    python3 scripts/nvrtc_check.py /tmp/nvrtc/x/nvidia/cu13 [kernels/gemm.cu ...]

NVRTC_OPTS adds options, e.g. NVRTC_OPTS=--ptxas-options=-v prints registers and spills. A
file with a `// ember-compiled-after: OTHER.cu` line is compiled after OTHER.cu, as the backend does.
"""
import ctypes
import os
import pathlib
import sys

root = pathlib.Path(sys.argv[1])
nvrtc = ctypes.CDLL(str(next((root / "lib").glob("libnvrtc.so*"))))
kernels = pathlib.Path(__file__).resolve().parent.parent / "kernels"
files = [pathlib.Path(f) for f in sys.argv[2:]] or sorted(kernels.glob("*.cu"))
common = (kernels / "common.cuh").read_text()
failed = False
for path in files:
    text = path.read_text()
    # A file that extends another says so on a line `// ember-compiled-after: NAME.cu`; the
    # CUDA backend compiles the two together, in that order.
    before = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("// ember-compiled-after:")]
    src = "\n".join([common] + [(kernels / b).read_text() for b in before] + [text]).encode()
    prog = ctypes.c_void_p()
    assert nvrtc.nvrtcCreateProgram(ctypes.byref(prog), src, path.name.encode(), 0, None, None) == 0
    opts = [b"--gpu-architecture=sm_90a", b"-I" + str(root / "include").encode(), b"--std=c++17", b"-lineinfo"]
    opts += [o.encode() for o in os.environ.get("NVRTC_OPTS", "").split()]
    arr = (ctypes.c_char_p * len(opts))(*opts)
    rc = nvrtc.nvrtcCompileProgram(prog, len(opts), arr)
    size = ctypes.c_size_t()
    nvrtc.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
    log = ctypes.create_string_buffer(size.value)
    nvrtc.nvrtcGetProgramLog(prog, log)
    text = log.value.decode(errors="replace").strip()
    print(f"{path.name}: {'ok' if rc == 0 else 'FAILED'}")
    if text:
        print(text)
    failed |= rc != 0
sys.exit(1 if failed else 0)
