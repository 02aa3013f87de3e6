#!/usr/bin/env python3
"""Summarizes a bench/sched-study JSON-lines file: per configuration, median
[min..max] of a (conn/s, CPU µs/conn, context switches/conn), b (cycles/s,
CPU µs/cycle per K) and c hold (CPU µs/conn), with ratios to the raw
baselines and to the default configuration of the same invocation."""
import json
import statistics
import sys

rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
labels = []
for r in rows:
    if r["label"] != "raw" and r["label"] not in labels:
        labels.append(r["label"])


def vals(label, mode, key, **kw):
    return [float(r[key]) for r in rows if r["label"] == label and r.get("mode") == mode
            and r.get("ok") and key in r and all(r.get(k) == v for k, v in kw.items())]


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def f(xs, d=0):
    if not xs:
        return "n/a"
    return f"{med(xs):,.{d}f} [{min(xs):,.{d}f}..{max(xs):,.{d}f}]".replace(",", " ")


ks = sorted({r["concurrency"] for r in rows if r.get("mode") == "cycle"})
raw_cps = vals("raw", "raw-ramp", "conn_per_s")
raw_cpu = vals("raw", "raw-ramp", "cpu_us_per_conn")
raw_c = vals("raw", "raw-accept", "cpu_us_per_conn")
print(f"raw a: {f(raw_cps)} conn/s, {f(raw_cpu, 1)} µs CPU/conn, "
      f"{f(vals('raw', 'raw-ramp', 'ctx_switches_per_conn'), 2)} cs/conn; "
      f"raw c hold: {f(raw_c, 1)} µs CPU/conn ({len(raw_cps)} runs)\n")
hdr = ["config", "workers", "a conn/s", "a /raw", "a CPU µs/conn", "a CPU /raw", "a cs/conn"]
for k in ks:
    hdr += [f"b K={k} cycles/s", f"b K={k} µs/cycle", f"b K={k} cs/cycle"]
hdr += ["c hold µs/conn", "c /raw", "c cs/conn"]
print("| " + " | ".join(hdr) + " |")
print("|" + "---|" * len(hdr))
for lb in labels:
    w = vals(lb, "ramp", "caf_workers")
    a_cps = vals(lb, "ramp", "conn_per_s")
    a_cpu = vals(lb, "ramp", "cpu_us_per_conn")
    c_cpu = vals(lb, "accept", "cpu_us_per_conn")
    cells = [lb, f"{med(w):.0f}" if w else "?", f(a_cps), f"{med(a_cps)/med(raw_cps):.2f}",
             f(a_cpu, 1), f"{med(a_cpu)/med(raw_cpu):.2f}",
             f"{med(vals(lb, 'ramp', 'ctx_switches_per_conn')):.2f}"]
    for k in ks:
        cells += [f(vals(lb, "cycle", "cycles_per_s", concurrency=k)),
                  f(vals(lb, "cycle", "cpu_us_per_cycle", concurrency=k), 1),
                  f"{med(vals(lb, 'cycle', 'ctx_switches_per_cycle', concurrency=k)):.2f}"]
    cells += [f(c_cpu, 1), f"{med(c_cpu)/med(raw_c):.2f}",
              f"{med(vals(lb, 'accept', 'ctx_switches_per_conn')):.2f}"]
    bad = sum(1 for r in rows if r["label"] == lb and not r.get("ok"))
    if bad:
        cells[0] += f" ({bad} failed)"
    print("| " + " | ".join(cells) + " |")
