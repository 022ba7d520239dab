#!/usr/bin/env python3
"""Sums Nsight Compute's `--csv --metrics gpu__time_duration.sum` output per kernel and grid:
calls, total and mean time, largest first, and the total (the device time of the profiled
range when kernels run one after another).

    python3 scripts/ncu_summary.py ncu.csv
"""
import collections
import csv
import sys

lines = open(sys.argv[1]).read().splitlines()
start = next(i for i, line in enumerate(lines) if line.startswith('"ID"'))
rows = list(csv.reader(lines[start:]))
header = rows[0]
name, grid, unit, value = (header.index(h) for h in ("Kernel Name", "Grid Size", "Metric Unit", "Metric Value"))
scale = {"ns": 1e-3, "nsecond": 1e-3, "us": 1.0, "usecond": 1.0, "ms": 1e3, "msecond": 1e3}
totals = collections.defaultdict(lambda: [0, 0.0])
for row in rows[1:]:
    if len(row) <= value:
        continue
    us = float(row[value].replace(",", "")) * scale[row[unit]]
    key = f"{row[name][:48]} {row[grid]}"
    totals[key][0] += 1
    totals[key][1] += us
total = sum(t for _, t in totals.values())
print(f"{'ms':>8} {'calls':>5} {'us/call':>9}  kernel grid")
for key, (calls, us) in sorted(totals.items(), key=lambda kv: -kv[1][1]):
    print(f"{us / 1e3:8.3f} {calls:5d} {us / calls:9.1f}  {key}")
print(f"{total / 1e3:8.3f} ms in all")
