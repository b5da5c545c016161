#!/usr/bin/env python3
"""Turns `swift package benchmark --format markdown` output into the compact
table of docs/benchmarks.md: p50 time per run, the figure per unit of work,
and the malloc count. Usage: micro_table.py BENCH_OUTPUT > micro-results.md"""
import re
import sys

UNITS = {"ns": 1e-9, "μs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}


def frames_per_ring(payload, ring):
    header = 2 + (0 if payload < 126 else (2 if payload <= 0xFFFF else 8)) + 4
    return ring // (header + payload)


# name -> (unit of work per run, how to describe it)
def per_unit(name, seconds):
    m = re.match(r"Parse\+unmask (\d+) B frames", name)
    if m:
        size = int(m.group(1))
        n = frames_per_ring(size, 128 * 1024 if size >= 65536 else 64 * 1024)
        return "%.1f M frames/s, %.2f GB/s" % (n / seconds / 1e6, n * size / seconds / 1e9)
    m = re.match(r"UTF-8 validate 64 KiB", name)
    if m:
        return "%.2f GB/s" % (65536 / seconds / 1e9)
    m = re.match(r"Encode (\d+) B frames x1000", name)
    if m:
        return "%.1f M frames/s" % (1000 / seconds / 1e6)
    m = re.match(r"Cross-thread sends, (\d+) threads x (\d+)k", name)
    if m:
        return "%.2f M messages/s" % (int(m.group(1)) * int(m.group(2)) * 1000 / seconds / 1e6)
    if name.startswith("Echo path"):
        return "%.2f M messages/s" % (10000 / seconds / 1e6)
    m = re.match(r"Sweep (\d+) entries, (\d+) due per tick", name)
    if m:
        return "%.0f ns per due entry" % (seconds * 1e9 / int(m.group(2)))
    return ""


def main():
    text = open(sys.argv[1]).read()
    rows = []
    for block in re.split(r"^### ", text, flags=re.M)[1:]:
        name = block.splitlines()[0].strip()
        wall = re.search(r"^\| Time \(wall clock\) \((\S+)\) \*\s*\|([^\n]*)", block, re.M)
        malloc = re.search(r"^\| Malloc \(total\) \*\s*\|([^\n]*)", block, re.M)
        if not wall or not malloc:
            continue
        unit = UNITS[wall.group(1)]
        p50 = float(wall.group(2).split("|")[2].strip().replace(",", "")) * unit
        mallocs = malloc.group(1).split("|")[2].strip()
        rows.append((name, p50, per_unit(name, p50), mallocs))
    print("| benchmark | p50 time per run | per unit of work | mallocs per run (p50) |")
    print("|---|---|---|---|")
    for name, p50, figure, mallocs in rows:
        t = "%.1f µs" % (p50 * 1e6) if p50 < 1e-2 else "%.2f ms" % (p50 * 1e3)
        print("| %s | %s | %s | %s |" % (name, t, figure or "–", mallocs))


if __name__ == "__main__":
    main()
