#!/usr/bin/env python3
"""Turns the raw JSON lines of one bench/run invocation into Markdown tables
(stdout), a summary JSON file and a gnuplot script for the ramp plot.

Usage: report.py RAW.jsonl --runs R --max-pending K --summary OUT.json
                 [--plot-script OUT.gp --plot OUT.svg]

Every figure is median [min..max] over the fresh-process runs found in RAW.
"""

import argparse
import json
import math
import statistics

# Reference figures of docs/bench-protocol.md (btcd connmgr and
# raw Go on the same machine kind, not measured in this run).
REF_A = {
    1000: ("55.1 ms, 18 133 conn/s, 49.9 µs", "50.7 ms, 19 717 conn/s, 47.1 µs"),
    5000: ("242.6 ms, 20 607 conn/s, 54.4 µs", "225.8 ms, 22 147 conn/s, 51.3 µs"),
    10000: ("429.7 ms, 23 271 conn/s, 55.2 µs", "395.7 ms, 25 273 conn/s, 49.6 µs"),
}
REF_B = {  # (permanent, concurrency) -> (cycles/s, CPU µs per cycle)
    (False, 1): (381_000, 3.0),
    (False, 8): (333_000, 5.0),
    (False, 100): (295_000, 6.5),
    (True, 1): (467_000, 2.4),
    (True, 8): (529_000, 3.1),
}
REF_C = {  # action -> (btcd accepted/s, btcd CPU µs, raw Go accepted/s, raw Go CPU µs)
    "hold": (30_228, 15.9, 32_375, 12.7),
    "close": (29_869, 23.5, 25_350, 28.8),
}
REF_D = ("≈ 11.9 kB", "≈ 12.3 kB")
MICRO_EVENTS = [
    ("connect", "connect request (non-permanent) → start_dial"),
    ("dial_succeeded", "dial_succeeded → connected"),
    ("disconnect", "disconnect with retry → close, backoff, arm_timer"),
    ("timer_fired", "timer_fired → redial"),
    ("remove", "disconnect without retry (remove)"),
    ("inbound", "inbound accept → slot"),
    ("addrman_insert", "address manager at 100 000 entries: insert"),
    ("addrman_select", "address manager at 100 000 entries: select"),
    ("addrman_evict", "address manager at 100 000 entries: evict"),
    ("ban_lookup", "ban list at 100 000 bans: lookup"),
    ("gate_accept", "gate function per inbound (ban pre-check + allow-all call)"),
    ("local_address", "local_address() of a TCP connection (asked for an accept gate)"),
]


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def stat(xs):
    xs = [float(x) for x in xs]
    if not xs:
        return None
    return {"median": med(xs), "min": min(xs), "max": max(xs), "values": xs}


def num(v, digits=1):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    return f"{v:,.{digits}f}".replace(",", " ")


def fmt(xs, digits=1):
    if not xs:
        return "n/a"
    return f"{num(med(xs), digits)} [{num(min(xs), digits)}..{num(max(xs), digits)}]"


def ratio(a, b):
    if not a or not b:
        return float("nan")
    mb = med(b)
    return med(a) / mb if mb else float("nan")


def rnum(x):
    return "n/a" if math.isnan(x) else f"{x:.2f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("raw")
    ap.add_argument("--runs", type=int, required=True)
    ap.add_argument("--max-pending", default="1024")
    ap.add_argument("--summary", required=True)
    ap.add_argument("--plot-script")
    ap.add_argument("--plot")
    args = ap.parse_args()

    rows = [json.loads(l) for l in open(args.raw) if l.strip()]
    summary = {"raw": args.raw, "runs": args.runs, "scenarios": {}}

    def pick(mode, **kw):
        return [r for r in rows if r.get("mode") == mode
                and all(r.get(k) == v for k, v in kw.items())]

    def ok(rs):
        return [r for r in rs if r.get("ok")]

    def g(rs, k):
        return [float(r[k]) for r in rs if k in r]

    def failed_note(*groups):
        failed = sum(len(rs) - len(ok(rs)) for rs in groups)
        return f" ({failed} failed runs)" if failed else ""

    out = []
    p = out.append
    cafs = sorted({r.get("caf", "") for r in rows if "caf" in r})
    workers = sorted({r["caf_workers"] for r in rows if "caf_workers" in r})
    if cafs:
        shown = ", ".join(f"`{c}`" if c else "none (CAF defaults)" for c in cafs)
        p(f"CAF options of ours: {shown}; scheduler workers: {', '.join(map(str, workers))}")
        p("")
        summary["caf_options"] = cafs
        summary["caf_workers"] = workers

    # --- a / e ---------------------------------------------------------------
    ns = sorted({r["n"] for r in rows if r.get("mode") == "ramp" and r["n"] >= 1000})
    if ns:
        p(f"### Scenario a (outbound ramp) vs e (raw epoll loop): median [min..max] of {args.runs} fresh-process runs")
        p("")
        p(f"ours = connmgr manager, real reactor + TCP dialer, max_pending_dials = {args.max_pending}; "
          "raw = plain non-blocking epoll connect loop, all N connects issued at once. "
          "CPU = getrusage(RUSAGE_SELF) user+sys from start to the N-th connection.")
        p("")
        p("| N | ours ms | raw ms | ours conn/s | raw conn/s | conn/s ours/raw | ours CPU µs/conn | raw CPU µs/conn | CPU ours/raw | dial errors (ours/raw) | extra conns | ours peak RSS kB | raw peak RSS kB | btcd connmgr (ref.) | raw Go (ref.) |")
        p("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        sa = summary["scenarios"].setdefault("a", {})
        for n in ns:
            a_all, e_all = pick("ramp", n=n), pick("raw-ramp", n=n)
            a, e = ok(a_all), ok(e_all)
            errs = f"{sum(int(r.get('dial_errors', 0)) for r in a_all)}/{sum(int(r.get('dial_errors', 0)) for r in e_all)}"
            extra = sum(int(r.get("extra_connections", 0)) for r in a_all)
            bref, rref = REF_A.get(n, ("—", "—"))
            p(f"| {n}{failed_note(a_all, e_all)} | {fmt(g(a,'ms'))} | {fmt(g(e,'ms'))} | {fmt(g(a,'conn_per_s'),0)} | {fmt(g(e,'conn_per_s'),0)} | "
              f"{rnum(ratio(g(a,'conn_per_s'), g(e,'conn_per_s')))} | {fmt(g(a,'cpu_us_per_conn'))} | {fmt(g(e,'cpu_us_per_conn'))} | "
              f"{rnum(ratio(g(a,'cpu_us_per_conn'), g(e,'cpu_us_per_conn')))} | {errs} | {extra} | "
              f"{fmt(g(a,'peak_rss_kb'),0)} | {fmt(g(e,'peak_rss_kb'),0)} | {bref} | {rref} |")
            sa[str(n)] = {
                "ours": {k: stat(g(a, k)) for k in ("ms", "conn_per_s", "cpu_us_per_conn", "peak_rss_kb")},
                "raw": {k: stat(g(e, k)) for k in ("ms", "conn_per_s", "cpu_us_per_conn", "peak_rss_kb")},
                "ratio_conn_per_s": ratio(g(a, "conn_per_s"), g(e, "conn_per_s")),
                "ratio_cpu": ratio(g(a, "cpu_us_per_conn"), g(e, "cpu_us_per_conn")),
                "dial_errors": errs, "extra_connections": extra,
                "failed_runs": (len(a_all) - len(a)) + (len(e_all) - len(e)),
            }
        p("")
        p("Dial errors and extra connections are totals over all runs (extra = connections beyond N "
          "after a 500 ms settle; must be 0). btcd figures are the protocol's reference, taken on the same "
          "machine kind but not in this run: compare ratios, not absolutes.")
        p("")

    # --- b -------------------------------------------------------------------
    cyc = pick("cycle")
    if cyc:
        kinds = sorted({r.get("conn", "memory") for r in cyc})
        cycles = sorted({int(r.get("cycles", 0)) for r in ok(cyc)})
        p(f"### Scenario b (handler throughput without network): median [min..max] of {args.runs} fresh-process runs")
        p("")
        p(f"One cycle = disconnect(id, retry) → handler closes, schedules the retry (retry_duration 1 ns, "
          f"stable_connection_period 0) → redial → instant dialer answers with a {'/'.join(kinds)} connection → "
          f"connected event, which the driver answers with the next disconnect. {'/'.join(str(c) for c in cycles) or '?'} cycles per run, "
          "K requests cycling at once, warm-up (first K connects) not timed; non-permanent requests reconnect "
          "through disconnect(id, trigger_reconnect = true). CPU = whole process (getrusage). "
          "No raw baseline exists: the btcd figures are the protocol's reference, not this run.")
        p("")
        p("| requests | concurrent | ours cycles/s | ours CPU µs/cycle | btcd (ref.) cycles/s | btcd (ref.) CPU µs/cycle | cycles/s ours/btcd | CPU ours/btcd |")
        p("|---|---|---|---|---|---|---|---|")
        sb = summary["scenarios"].setdefault("b", {})
        for perm in (False, True):
            for k in sorted({r["concurrency"] for r in cyc if r["permanent"] == perm}):
                allr = pick("cycle", permanent=perm, concurrency=k)
                rs = ok(allr)
                ref = REF_B.get((perm, k))
                rate, cpu = g(rs, "cycles_per_s"), g(rs, "cpu_us_per_cycle")
                rr = med(rate) / ref[0] if ref and rate else float("nan")
                rc = med(cpu) / ref[1] if ref and cpu else float("nan")
                label = "permanent" if perm else "non-permanent"
                p(f"| {label}{failed_note(allr)} | {k} | {fmt(rate,0)} | {fmt(cpu,2)} | "
                  f"{num(ref[0],0) if ref else '—'} | {num(ref[1],1) if ref else '—'} | {rnum(rr)} | {rnum(rc)} |")
                sb[f"{label}-{k}"] = {"cycles_per_s": stat(rate), "cpu_us_per_cycle": stat(cpu),
                                      "ref_btcd": ref, "failed_runs": len(allr) - len(rs)}
        p("")

    # --- c / e ---------------------------------------------------------------
    acc = pick("accept") + pick("raw-accept")
    if acc:
        n_c = sorted({r["n"] for r in acc})
        workers = sorted({r.get("workers") for r in acc})
        lthreads = sorted({r.get("load_threads") for r in acc if r.get("load_threads")})
        backlogs = sorted({r.get("backlog") for r in acc if r.get("backlog")})
        sources = sorted({r.get("sources") for r in acc if r.get("sources") is not None})

        # Ours records its admission mode; raw records the mode of the ours
        # runs it was paired with (it does no admission itself). Rows of
        # older runs have neither: None.
        def adm_of(r):
            return r.get("admission", r.get("paired_with_admission"))

        adm_rows = [r for r in acc if r.get("mode") == "accept"]
        pend = sorted({r.get("max_pending_inbound") for r in adm_rows if r.get("admission")})
        p(f"### Scenario c (inbound accept) vs e (raw epoll accept loop): median [min..max] of {args.runs} fresh-process runs")
        p("")
        p(f"A load process (connmgr-bench-load: {'/'.join(map(str, workers))} workers, each a connect loop with one "
          f"connect in flight, over {'/'.join(map(str, lthreads)) or '?'} OS threads, like goroutines under GOMAXPROCS 2) opens "
          f"{'/'.join(map(str, n_c))} connections from {'/'.join(map(str, sources)) or '1'} distinct source addresses "
          "(127.10.x.y; 0 = 127.0.0.1 only); ours = manager + tcp_acceptor, the accept callback holds "
          f"or closes each connection; raw = plain non-blocking epoll accept4 loop; both listen with backlog "
          f"{'/'.join(map(str, backlogs)) or '?'} (net.core.somaxconn, as Go does). "
          "Admission on = the library's defaults (per-IP cap 4, rate 1/s burst 10, eviction on, "
          f"max_pending_inbound {'/'.join(map(str, pend)) or '?'}) with max_inbound = N, and in hold each "
          "connection reported ready at once; off = every admission rule off. Raw does no admission either way. "
          "Time from \"go\" to the N-th accept; CPU = the server process only. A run fails if any connection was "
          "rejected (or, in hold, evicted). "
          "Overflows = TcpExt ListenOverflows during the runs (system-wide; each one costs a 1 s handshake retransmission).")
        p("")
        p("| action | admission | ours accepted/s | raw accepted/s | accepted/s ours/raw | ours CPU µs/conn | raw CPU µs/conn | CPU ours/raw | rejected/evicted (ours) | load errors | overflows (ours/raw) | btcd (ref.) | raw Go (ref.) |")
        p("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        sc = summary["scenarios"].setdefault("c", {})
        modes = sorted({adm_of(r) for r in acc}, key=lambda x: (x is None, not x))
        for adm in modes:
            for action in ("hold", "close"):
                a_all = [r for r in pick("accept", action=action) if adm_of(r) == adm]
                e_all = [r for r in pick("raw-accept", action=action) if adm_of(r) == adm]
                if not a_all and not e_all:
                    continue
                a, e = ok(a_all), ok(e_all)
                lerr = sum(int(r.get("load_errors", 0)) for r in a_all + e_all)
                rej = sum(int(r.get("inbound_rejected", 0)) for r in a_all)
                evi = sum(int(r.get("inbound_evicted", 0)) for r in a_all)
                ref = REF_C[action]
                label = {True: "on", False: "off", None: "n/a"}[adm]
                ovf = f"{sum(max(0, int(r.get('listen_overflows', 0))) for r in a_all)}/{sum(max(0, int(r.get('listen_overflows', 0))) for r in e_all)}"
                p(f"| {action}{failed_note(a_all, e_all)} | {label} | {fmt(g(a,'accepted_per_s'),0)} | {fmt(g(e,'accepted_per_s'),0)} | "
                  f"{rnum(ratio(g(a,'accepted_per_s'), g(e,'accepted_per_s')))} | {fmt(g(a,'cpu_us_per_conn'))} | "
                  f"{fmt(g(e,'cpu_us_per_conn'))} | {rnum(ratio(g(a,'cpu_us_per_conn'), g(e,'cpu_us_per_conn')))} | {rej}/{evi} | {lerr} | {ovf} | "
                  f"{num(ref[0],0)}/s, {ref[1]} µs | {num(ref[2],0)}/s, {ref[3]} µs |")
                key = action if adm is not False else f"{action}-admission-off"
                sc[key] = {
                    "admission": adm,
                    "ours": {k: stat(g(a, k)) for k in ("accepted_per_s", "cpu_us_per_conn")},
                    "raw": {k: stat(g(e, k)) for k in ("accepted_per_s", "cpu_us_per_conn")},
                    "ratio_accepted_per_s": ratio(g(a, "accepted_per_s"), g(e, "accepted_per_s")),
                    "ratio_cpu": ratio(g(a, "cpu_us_per_conn"), g(e, "cpu_us_per_conn")),
                    "inbound_rejected": rej, "inbound_evicted": evi,
                    "load_errors": lerr, "listen_overflows": ovf, "ref": ref,
                    "failed_runs": (len(a_all) - len(a)) + (len(e_all) - len(e)),
                }
        p("")
        p("Inbound rate is bounded by the load process and the kernel: compare CPU per connection. "
          "Totals of rejected/evicted and load errors are over all runs.")
        p("")

    # --- d -------------------------------------------------------------------
    def per_conn(mode):
        hi = [float(r["peak_rss_kb"]) for r in ok(pick(mode, n=5000))]
        lo = [float(r["peak_rss_kb"]) for r in ok(pick(mode, n=8))]
        k = min(len(hi), len(lo))
        return [(hi[i] - lo[i]) * 1024.0 / 4992.0 for i in range(k)], hi, lo

    if pick("ramp", n=8) or pick("raw-ramp", n=8):
        ours, ohi, olo = per_conn("ramp")
        raw, rhi, rlo = per_conn("raw-ramp")
        p(f"### Scenario d (memory per established connection): median [min..max] of {args.runs} run pairs")
        p("")
        p("(peak RSS at N = 5000 − peak RSS at N = 8) / 4992, run i of N = 5000 paired with run i of N = 8 "
          "(ru_maxrss of the dialing process; the sink holds the other ends in its own process).")
        p("")
        p("| | ours | raw | ours/raw | btcd (ref.) | raw Go (ref.) |")
        p("|---|---|---|---|---|---|")
        p(f"| bytes per connection | {fmt(ours,0)} | {fmt(raw,0)} | {rnum(ratio(ours, raw))} | {REF_D[0]} | {REF_D[1]} |")
        p(f"| peak RSS kB at N = 8 | {fmt(olo,0)} | {fmt(rlo,0)} | {rnum(ratio(olo, rlo))} | | |")
        p(f"| peak RSS kB at N = 5000 | {fmt(ohi,0)} | {fmt(rhi,0)} | {rnum(ratio(ohi, rhi))} | | |")
        p("")
        summary["scenarios"]["d"] = {
            "ours_bytes_per_conn": stat(ours), "raw_bytes_per_conn": stat(raw),
            "ratio": ratio(ours, raw), "ours_peak_kb_8": stat(olo), "ours_peak_kb_5000": stat(ohi),
            "raw_peak_kb_8": stat(rlo), "raw_peak_kb_5000": stat(rhi),
        }

    # --- scale ---------------------------------------------------------------
    held = ok(pick("ramp", n=10000))
    held_raw = ok(pick("raw-ramp", n=10000))
    s = pick("silent", n=10000)
    if held or s:
        p("### Scale checks (threads from /proc/self/status)")
        p("")
    if held:
        p("10 000 established outbound connections held by one process (scenario a, N = 10000; the sink holds the other ends in another process):")
        p("")
        p("| | runs | threads at main → before start → holding 10 000 | peak RSS kB |")
        p("|---|---|---|---|")
        for name, rs in (("ours", held), ("raw", held_raw)):
            if rs:
                p(f"| {name} | {len(rs)} | {fmt(g(rs,'threads_at_main'),0)} → {fmt(g(rs,'threads_before'),0)} → "
                  f"{fmt(g(rs,'threads_during'),0)} | {fmt(g(rs,'peak_rss_kb'),0)} |")
        p("")
        summary["scenarios"]["held_10k"] = {
            "threads_before": stat(g(held, "threads_before")),
            "threads_during": stat(g(held, "threads_during")),
        }
    if s:
        r = s[0]
        p("10 000 dials in flight against a silent peer (one run):")
        p("")
        p("| pending connects | threads before → during | RSS before → during | bytes per dial | stop latency | fds before / during / after stop | back to baseline |")
        p("|---|---|---|---|---|---|---|")
        p(f"| {r.get('pending_connects')} (reached in {r.get('ramp_ms', 0):.0f} ms) | "
          f"{r.get('threads_before')} → {r.get('threads_during')} | "
          f"{r.get('rss_kb_before')} kB → {r.get('rss_kb_during')} kB | {r.get('bytes_per_dial', 0):.0f} | "
          f"{r.get('stop_ms', 0):.1f} ms | {r.get('fds_before')} / {r.get('fds_during')} / {r.get('fds_after_stop')} | "
          f"{'yes' if r.get('fds_back_to_baseline') else 'NO'} |")
        p("")
        summary["scenarios"]["silent"] = r

    # --- micro ---------------------------------------------------------------
    mic = pick("micro")
    if mic:
        k = mic[0].get("k")
        rounds = mic[0].get("rounds")
        p(f"### Micro-benchmarks: decision cost per event (conn_machine, address manager, ban list), ns (median [min..max] over {len(mic)} processes, each the median of {rounds} rounds of {k} events)")
        p("")
        p("| event | ns per event |")
        p("|---|---|")
        sm = summary["scenarios"].setdefault("micro", {})
        for key, label in MICRO_EVENTS:
            xs = g(mic, f"{key}_ns")
            if not xs:
                continue  # a figure this build does not measure
            p(f"| {label} | {fmt(xs,1)} |")
            sm[key] = stat(xs)
        p("")

    # --- g -------------------------------------------------------------------
    echo_rows = pick("stream") + pick("raw-stream")
    if echo_rows:
        gb = sorted({int(r["bytes"]) for r in echo_rows})
        windows = sorted({int(r["window"]) for r in pick("stream") if "window" in r})
        p(f"### Scenario g (byte streams) vs a raw epoll echo loop: median [min..max] of {args.runs} fresh-process runs")
        p("")
        p(f"A load process (connmgr-bench-stream-load, one epoll thread) pushes {'/'.join(f'{b / 2**20:.0f} MiB' for b in gb)} "
          "split over K connections, 64 KiB per send, reads every byte back on the same connection and checks it. "
          "ours = each connection a reactor stream (receive window "
          f"{'/'.join(f'{w // 1024} KiB' for w in windows) or '?'}); on_data posts every chunk to one CAF actor, which "
          "sends it back through the stream handle and then reports it consumed (the reactor reads up to what the "
          "window has free, at most 256 KiB per recv); raw = one thread, one epoll set, "
          "recv of at most 64 KiB (--raw-read) and a send of it back on the same connection. Time from \"go\" to the load's last "
          "byte back; MiB/s counts one direction; CPU = the server process only (getrusage), per MiB echoed. "
          "Goal: MiB/s and CPU per MiB within 1.3× raw.")
        p("")
        p("| connections | ours MiB/s | raw MiB/s | MiB/s ours/raw | ours CPU µs/MiB | raw CPU µs/MiB | CPU ours/raw | within 1.3× | ours ctx switches/MiB | raw ctx switches/MiB | ours peak RSS kB | raw peak RSS kB | load CPU µs/MiB (ours/raw runs) | sends refused (ours) | load mismatches/errors |")
        p("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        sg = summary["scenarios"].setdefault("g", {})
        for k in sorted({int(r["conns"]) for r in echo_rows}):
            a_all, e_all = pick("stream", conns=k), pick("raw-stream", conns=k)
            a, e = ok(a_all), ok(e_all)
            rt = ratio(g(a, "mib_per_s"), g(e, "mib_per_s"))
            rc = ratio(g(a, "cpu_us_per_mib"), g(e, "cpu_us_per_mib"))
            within = "n/a" if math.isnan(rt) or math.isnan(rc) else (
                "yes" if rt >= 1 / 1.3 and rc <= 1.3 else "NO")
            refused = sum(int(r.get("sends_full", 0)) for r in a_all)
            bad = (f"{sum(int(r.get('load_mismatches', 0)) for r in a_all + e_all)}/"
                   f"{sum(int(r.get('load_errors', 0)) for r in a_all + e_all)}")
            p(f"| {k}{failed_note(a_all, e_all)} | {fmt(g(a,'mib_per_s'),0)} | {fmt(g(e,'mib_per_s'),0)} | {rnum(rt)} | "
              f"{fmt(g(a,'cpu_us_per_mib'),0)} | {fmt(g(e,'cpu_us_per_mib'),0)} | {rnum(rc)} | {within} | "
              f"{fmt(g(a,'ctx_switches_per_mib'),1)} | {fmt(g(e,'ctx_switches_per_mib'),1)} | "
              f"{fmt(g(a,'peak_rss_kb'),0)} | {fmt(g(e,'peak_rss_kb'),0)} | "
              f"{num(med(g(a,'load_cpu_us_per_mib')),0)} / {num(med(g(e,'load_cpu_us_per_mib')),0)} | {refused} | {bad} |")
            sg[f"echo-{k}"] = {
                "ours": {x: stat(g(a, x)) for x in ("mib_per_s", "cpu_us_per_mib", "peak_rss_kb", "ctx_switches_per_mib")},
                "raw": {x: stat(g(e, x)) for x in ("mib_per_s", "cpu_us_per_mib", "peak_rss_kb", "ctx_switches_per_mib")},
                "ratio_mib_per_s": rt, "ratio_cpu": rc, "within_1_3": within,
                "sends_refused": refused, "failed_runs": (len(a_all) - len(a)) + (len(e_all) - len(e)),
            }
        p("")
        p("Sends refused = sends of ours refused by a full send buffer (1 MiB), summed over all runs; the actor then "
          "keeps the chunk unconsumed and retries after 1 ms. Mismatches/errors = reads whose bytes differed from "
          "what was sent and connections that ended early, over all runs of both (must be 0/0). Load CPU = the "
          "load process's own CPU per MiB (medians): the figure to watch if MiB/s stops following the server.")
        p("")
    flood_rows = pick("flood") + pick("raw-flood")
    if flood_rows:
        a_all, e_all = pick("flood"), pick("raw-flood")
        a, e = ok(a_all), ok(e_all)
        r0 = flood_rows[0]
        kib = int(r0.get("window", 262144)) // 1024
        p(f"### Scenario g, flood: peak RSS of the server, median [min..max] of {args.runs} fresh-process runs")
        p("")
        p(f"The load writes {int(r0['bytes']) / 2**20:.0f} MiB on {r0['conns']} connections as fast as it can and never "
          f"reads. For the first {r0.get('stall_ms', '?')} ms the server consumes nothing (ours: the actor holds what "
          "arrives and reports nothing consumed; raw: nothing is read), then it consumes and discards everything. "
          f"Bound = RSS just before \"go\" + connections × {kib} KiB (ours' receive window) + 32 MiB; peak = VmHWM "
          "(ru_maxrss) at the end. Bytes read during the stall show the window holding: at most connections × window.")
        p("")
        p("| | runs within bound | peak RSS kB | bound kB | RSS before kB | peak − before kB | read during the stall (bytes) | ms to consume all | CPU µs/MiB |")
        p("|---|---|---|---|---|---|---|---|---|")
        sf = summary["scenarios"].setdefault("g_flood", {})
        for name, rs, rs_all in (("ours", a, a_all), ("raw", e, e_all)):
            if not rs_all:
                continue
            within = sum(1 for r in rs if r.get("rss_within_bound"))
            growth = [float(r["peak_rss_kb"]) - float(r["rss_before_kb"]) for r in rs]
            during = fmt(g(rs, "read_at_stall_end"), 0) if name == "ours" else "—"
            p(f"| {name}{failed_note(rs_all)} | {within}/{len(rs_all)} | {fmt(g(rs,'peak_rss_kb'),0)} | "
              f"{fmt(g(rs,'rss_bound_kb'),0)} | {fmt(g(rs,'rss_before_kb'),0)} | {fmt(growth,0)} | {during} | "
              f"{fmt(g(rs,'ms'),0)} | {fmt(g(rs,'cpu_us_per_mib'),0)} |")
            sf[name] = {"within_bound": f"{within}/{len(rs_all)}",
                        **{x: stat(g(rs, x)) for x in ("peak_rss_kb", "rss_bound_kb", "rss_before_kb", "ms")},
                        "growth_kb": stat(growth)}
        p("")

    # --- plot ----------------------------------------------------------------
    plot_n = 10000 if pick("ramp", n=10000) else (max(ns) if ns else None)
    if args.plot_script and args.plot and plot_n:
        def median_run(rs):
            rs = sorted(ok(rs), key=lambda r: r["ms"])
            return rs[len(rs) // 2] if rs else None
        curves = []
        for name, mode in (("ours (connmgr manager)", "ramp"), ("raw epoll loop", "raw-ramp")):
            r = median_run(pick(mode, n=plot_n))
            if r and r.get("curve_ms"):
                step = r.get("curve_step", 100)
                pts = [(0.0, 0)] + [(t, (i + 1) * step) for i, t in enumerate(r["curve_ms"])]
                curves.append((name, pts, r["ms"]))
        if curves:
            with open(args.plot_script, "w") as f:
                f.write(f'set terminal svg size 900,520 dynamic enhanced font "sans,12"\n')
                f.write(f'set output "{args.plot}"\n')
                f.write(f'set title "Outbound ramp to N = {plot_n}: connections over time (median run of {args.runs})"\n')
                f.write('set xlabel "ms since start"\nset ylabel "connections established"\n')
                f.write('set key left top\nset grid\n')
                for i, (name, pts, _) in enumerate(curves):
                    f.write(f"$d{i} << EOD\n")
                    for t, c in pts:
                        f.write(f"{t:.3f} {c}\n")
                    f.write("EOD\n")
                plots = [f'$d{i} using 1:2 with lines lw 2 title "{name} ({ms:.0f} ms)"'
                         for i, (name, _, ms) in enumerate(curves)]
                f.write("plot " + ", ".join(plots) + "\n")
            summary["plot"] = args.plot

    print("\n".join(out))
    def clean(x):
        if isinstance(x, float) and math.isnan(x):
            return None
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        return x

    with open(args.summary, "w") as f:
        json.dump(clean(summary), f, indent=1)


if __name__ == "__main__":
    main()
