#!/usr/bin/env python3
"""Device time of each product of `cargo bench --bench cuda_ops -- linear-only` and of
`benches/torch_ops.py`, read from Nsight Compute, so that Ember's GEMM and cuBLAS are compared
kernel against kernel. (Both benches time a loop of products on the host; at ~1,000 rows a
product takes ~70-80 us and the host's launch path, not the kernel, can set the pace: the wall
time per product then overstates the kernel's.)

On the GPU machine, from the repository root:

    ncu --csv --metrics gpu__time_duration.sum --cache-control none --clock-control none \\
        CUDA_OPS linear-only > ember.csv
    ncu --csv --metrics gpu__time_duration.sum --cache-control none --clock-control none \\
        python3 benches/torch_ops.py > torch.csv
    python3 benches/gemm_device_time.py ember.csv torch.csv

Each bench runs its table rows in order, every row 3 warm-up products and then 50 (10 for the
largest) timed ones. A product is one or more kernels: for Ember the GEMM (after the FP8
activation quantization, when there is one) and split-K's reduce; for cuBLAS its kernels. The
script cuts the kernel sequence into products, groups consecutive products of the same kernels
and grids into rows, and prints the median device time of each row's timed products, rows in
bench order. torch_ops.py fills new inputs on the device before each row, which separates its
rows; cuda_ops uploads them, so two adjacent Ember rows of the same kernels and grids (gate_up
at 8 and 64 rows: 224 tiles of 64 x 128 both) come out as one row of both rows' products.
Ember's list starts at 8 rows (below, the GEMV), cuBLAS's at 1.
"""
import csv
import statistics
import sys

SCALE = {"ns": 1e-3, "nsecond": 1e-3, "us": 1.0, "usecond": 1.0, "ms": 1e3, "msecond": 1e3}
# Kernels that set up the benches' inputs, not products.
SETUP = ("distribution", "elementwise", "fill", "copy", "Philox", "vectorized", "unrolled", "cast")


def launches(path):
    lines = open(path).read().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith('"ID"'))
    rows = list(csv.reader(lines[start:]))
    h = rows[0]
    name, grid, unit, value = (h.index(c) for c in ("Kernel Name", "Grid Size", "Metric Unit", "Metric Value"))
    for row in rows[1:]:
        if len(row) > value and row[h.index("Metric Name")] == "gpu__time_duration.sum":
            yield row[name], row[grid], float(row[value].replace(",", "")) * SCALE[row[unit]]


def products(path, ember):
    """Kernel launches cut into products: (signature, device us); `None` where the bench made
    new inputs (torch: the kernels that fill them), which starts a new row."""
    out = []
    for name, grid, us in launches(path):
        if not ember and any(s in name for s in SETUP):
            if out and out[-1] is not None:
                out.append(None)
            continue
        if ember:
            if not name.startswith(("ember_gemm", "ember_quantize")):
                continue  # GEMV rows and the layer ops
            first = name.startswith("ember_quantize") or (name.startswith("ember_gemm_sm90") and not (out and out[-1][0][-1][0].startswith("ember_quantize")))
        else:
            first = "reduce" not in name.lower()  # cublasLt's splitKreduce_kernel ends a product
        if first or not out or out[-1] is None:
            out.append([[(name, grid)], us])
        else:
            out[-1][0].append((name, grid))
            out[-1][1] += us
    return [None if p is None else (tuple(p[0]), p[1]) for p in out]


def rows(path, ember):
    groups = []
    fresh = True
    for product in products(path, ember):
        if product is None:
            fresh = True
            continue
        sig, us = product
        if groups and groups[-1][0] == sig and not fresh:
            groups[-1][1].append(us)
        else:
            groups.append((sig, [us]))
        fresh = False
    # Timed products: all but the 3 warm-ups.
    return [(sig, statistics.median(times[3:] or times), len(times)) for sig, times in groups]


def main():
    for path, ember in ((sys.argv[1], True), (sys.argv[2], False)):
        print(f"## {'Ember' if ember else 'cuBLAS'} ({path})")
        print("| row | products | median device us | kernels |")
        print("|---|---|---|---|")
        for i, (sig, us, n) in enumerate(rows(path, ember)):
            print(f"| {i} | {n} | {us:.1f} | {' + '.join(f'{k[:40]} {g}' for k, g in sig)} |")


if __name__ == "__main__":
    main()
