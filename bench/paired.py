#!/usr/bin/env python3
"""Compare qwenc builds or options by alternating them run by run: A B A B ..., then B A B A ...
(this VM's memory bandwidth moves between spells minutes long, so runs of one build and then the
other compare the spells, not the builds). Prints each variant's median pp/tg tokens/s, its median
decode share of the probed bandwidth, and the median of its paired tg ratios against the first
variant with how many pairs it won.

  bench/paired.py [--rounds N] [-p PP] [-n TG] VARIANT VARIANT [VARIANT ...]

A VARIANT is a quoted qwenc command line up to `bench`'s own options, e.g.
  bench/paired.py -p 2048 -n 64 "build/qwenc bench -m bench/out/qwen3-0.6b-q4 --kv-type f16" \
                                 "build/qwenc bench -m bench/out/qwen3-0.6b-q4 --kv-type q8_0"
(to compare two builds, copy the first build's binary aside and name both binaries).
"""
import argparse
import json
import shlex
import statistics
import subprocess
import sys


def run(variant, pp, tg):
    cmd = shlex.split(variant) + ["-p", str(pp), "-n", str(tg), "-r", "1", "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"paired.py: {variant!r} failed: {out.stderr.strip()}")
    q = json.loads(out.stdout.strip().splitlines()[-1])
    share = q["decode_gb_s"] / q["mem_bw_gb_s"] if q.get("mem_bw_gb_s") else float("nan")
    return q["pp_tok_s"], q["tg_tok_s"], share


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("-p", type=int, default=512, help="prompt tokens (default 512)")
    ap.add_argument("-n", type=int, default=128, help="decode steps (default 128)")
    ap.add_argument("variants", nargs="+")
    a = ap.parse_args()
    if len(a.variants) < 2:
        ap.error("give at least two variants")
    res = {v: [] for v in a.variants}
    for r in range(a.rounds):
        for v in a.variants if r % 2 == 0 else a.variants[::-1]:
            res[v].append(run(v, a.p, a.n))
    base = res[a.variants[0]]
    for i, v in enumerate(a.variants):
        pp = statistics.median(x[0] for x in res[v])
        tg = statistics.median(x[1] for x in res[v])
        share = statistics.median(x[2] for x in res[v])
        ratios = [res[v][k][1] / base[k][1] for k in range(a.rounds)]
        wins = sum(x > 1 for x in ratios)
        print(f"[{i}] pp {pp:7.1f}  tg {tg:7.1f} tok/s  decode {100 * share:3.0f}% of the probe  "
              f"tg vs [0]: median x{statistics.median(ratios):.3f}, won {wins}/{a.rounds}   {v}")


if __name__ == "__main__":
    main()
