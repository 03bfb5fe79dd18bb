"""The balance script on one Redis beside a Redis Cluster of one and of three
masters (no replicas), all on this machine, started for the run.

    .venv/bin/python -m bench.bench_redis_cluster [--entries 1000] [--ops 20] [--repeats 5]

Each sample is bench.bench_service's ceiling: CEILING_CLIENTS clients in one
process apply operations of `--entries` account debits each (100,000
accounts, so an operation touches every one of the 64 shards), through
`RedisStore` and its Lua script. On one Redis an operation is one pipeline;
on a cluster, one script call per shard, sent concurrently to the masters
holding them. Samples alternate between the topologies (a shared machine
drifts); printed: median account-deductions/s per topology, and the scaling
efficiency from one master to three (rate ratio / 3). With 2 cores for the
clients and every server, the machine bounds what three masters can add.
"""

from __future__ import annotations

import argparse
import statistics

from bench.bench_service import RedisCeiling
from tests.redis_cluster import RedisClusterServers
from tests.servers import RedisServer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entries", type=int, default=1_000, help="account debits per operation")
    parser.add_argument("--ops", type=int, default=20, help="operations per client per sample")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    single = RedisServer().start()
    one, three = RedisClusterServers(masters=1, replicas=0).start(), RedisClusterServers(replicas=0).start()
    try:
        ceilings = {name: RedisCeiling(url, entries=args.entries, ops=args.ops)
                    for name, url in (("one Redis", single.url), ("cluster, 1 master", one.url),
                                      ("cluster, 3 masters", three.url))}
        for _ in range(args.repeats):
            for ceiling in ceilings.values():
                ceiling.sample()
    finally:
        single.close()
        one.close()
        three.close()
    rates = {name: c.items / statistics.median(c.runs_s) for name, c in ceilings.items()}
    print(f"{args.entries} debits per operation, {args.repeats} samples each, medians:")
    for name, rate in rates.items():
        print(f"  {name:<20} {rate:12,.0f} account-deductions/s")
    ratio = rates["cluster, 3 masters"] / rates["cluster, 1 master"]
    print(f"  3 masters / 1 master: {ratio:.2f} (scaling efficiency {ratio / 3:.0%})")


if __name__ == "__main__":
    main()
