"""Prints tern-bench's JSON lines as a table: python3 bench/summarize.py < results.jsonl"""
import json
import sys

print(f"{'workload':>8} {'op':<4} {'target':<8} {'ops/s':>9} {'MB/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'vs tern':>8}")
for line in sys.stdin:
    if not line.startswith("{"):
        continue
    d = json.loads(line)
    print(f"{d['workload']:>8} {d['op']:<4} {d['target']:<8} {d['ops_per_sec']:>9} {d['mb_per_sec']:>8} "
          f"{d['p50_ms']:>8} {d['p99_ms']:>8} {d['ratio_to_tern']:>8}")
