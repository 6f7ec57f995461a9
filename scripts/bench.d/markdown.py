#!/usr/bin/env python3
"""Prints target/bench/results-detail.json as the Markdown table docs/BENCHMARKS.md's Results section uses.

    scripts/bench.d/markdown.py [RESULTS_DETAIL_JSON]

One row per workload and system; for each latency: seconds, MB/s, the requests the test server
counted, peak RSS of the mount process, and the ratio against the best peer (best peer's seconds
divided by this system's; > 1 means faster than every peer).
"""

import json
import sys
from pathlib import Path

path = Path(sys.argv[1] if len(sys.argv) > 1 else
            Path(__file__).resolve().parents[2] / "target" / "bench" / "results-detail.json")
detail = json.loads(path.read_text())
rows = detail["results"]
lats = sorted({r["latency_ms"] for r in rows})
by = {(r["workload"], r["system"], r["latency_ms"]): r for r in rows}
order = []
for r in rows:
    if (r["workload"], r["system"]) not in order:
        order.append((r["workload"], r["system"]))
KNOWN = ["cold_read", "warm_read", "metadata_walk", "backup", "bulk_upload", "large_upload"]
# workloads not in KNOWN (cold_sizes, grep_pages, walk_200k, ...) keep their order, after these
order.sort(key=lambda ws: KNOWN.index(ws[0]) if ws[0] in KNOWN else len(KNOWN))


def best_peer(workload, lat):
    peers = [r for (w, s, l), r in by.items() if w == workload and l == lat and not s.startswith("confluencefs")]
    return min(peers, key=lambda r: r["seconds"]) if peers else None


print(f"{detail['size']} run: {detail['machine']}. Sizes: `{json.dumps(detail['sizes'])}`.")
print()
head = "| workload | system |"
rule = "|---|---|"
for lat in lats:
    head += f" {lat} ms: s | MB/s | req | RSS MiB | vs best peer |"
    rule += "---:|---:|---:|---:|---:|"
print(head)
print(rule)
for workload, system in order:
    line = f"| {workload} | {system} |"
    for lat in lats:
        r = by.get((workload, system, lat))
        if not r:
            line += " | | | | |"
            continue
        best = best_peer(workload, lat)
        mbps = f"{r['bytes'] / r['seconds'] / 1e6:.0f}" if r["bytes"] else "–"
        req = str(r["requests"]) if r["requests"] is not None else "–"
        rss = f"{r['peak_rss_kib'] / 1024:.0f}" if r["peak_rss_kib"] else "–"
        ratio = f"{best['seconds'] / r['seconds']:.2f}× {best['system']}" if best else "–"
        if system == "confluencefs":
            ratio = f"**{ratio}**"
        line += f" {r['seconds']:.2f} | {mbps} | {req} | {rss} | {ratio} |"
    print(line)
loads = sorted({r.get("loadavg", "") for r in rows})
print()
print(f"Load average (1/5/15 min) during the run ranged over: {loads[0]} … {loads[-1]}.")
