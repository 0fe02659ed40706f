"""Prints tern-bench's JSON lines as tables: python3 bench/summarize.py < results.jsonl"""
import json
import sys

header = None
for line in sys.stdin:
    if not line.startswith("{"):
        continue
    d = json.loads(line)
    if "metric" in d:
        rest = {k: v for k, v in d.items() if k != "metric"}
        print(f"{d['metric']}: " + ", ".join(f"{k}={v}" for k, v in rest.items()))
        continue
    ratio_key = next(k for k in d if k.startswith("ratio_to_"))
    if header != ratio_key:
        header = ratio_key
        print(f"\n{'workload':>8} {'op':<15} {'target':<18} {'ops/s':>9} {'MB/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'vs ' + ratio_key[len('ratio_to_'):]:>8}")
    print(f"{d.get('workload', '-'):>8} {d['op']:<15} {d['target']:<18} {d['ops_per_sec']:>9} {d['mb_per_sec']:>8} "
          f"{d['p50_ms']:>8} {d['p99_ms']:>8} {d[ratio_key]:>8}")
