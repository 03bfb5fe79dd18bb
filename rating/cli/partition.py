"""`rating partition` and `rating rate --dask`: rating past one process (docs/scale.md)."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

from rating.cli.commands import EXIT_OK, subcommand
from rating.errors import InputError

SCHEDULER_CONNECT_TIMEOUT_S = 10

PARTITION_DESCRIPTION = """
    Bucket readings by their account's shard into a Parquet dataset that
    `rating rate --dask` rates one task per bucket, without a shuffle:
    DATASET/shard=NN/part-*.parquet (the shard of the account, a stable hash
    of its id), DATASET/shard=unknown/ for meters the registry lacks, and
    DATASET/_partition.json. Readings are checked as `rating rate` checks
    them (an error names the file and the row) and read batch by batch, in
    bounded memory. DATASET must be a new (or empty) folder; on any error
    nothing is left.

    Partition again after a meter changes account: rating refuses a dataset
    whose buckets no longer match the registry.

    examples:
      rating partition --site site.toml readings-2021.parquet readings-2022.csv --out by-shard/
      rating rate --site site.toml by-shard/ --dask tcp://scheduler:8786 --out results/
"""


def _partition_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--site", required=True, type=Path, metavar="SITE.toml",
                        help="site file: the registry says each meter's account")
    parser.add_argument("readings", nargs="+", type=Path, metavar="READINGS",
                        help="readings files (.parquet, .arrow/.feather, .arrows, .csv), in order")
    parser.add_argument("--out", required=True, type=Path, metavar="DATASET", help="the new dataset folder")
    parser.add_argument("--batch-rows", type=int, default=1_000_000, metavar="N",
                        help="readings held in memory at a time (default 1000000)")


@subcommand("partition", help="bucket readings by account shard for rate --dask",
            description=PARTITION_DESCRIPTION, arguments=_partition_arguments)
def partition_command(args: argparse.Namespace) -> int:
    from rating.config.loader import load_config
    from rating.distributed.partition import partition_readings

    if args.batch_rows < 1:
        raise InputError("--batch-rows must be 1 or more")
    config = load_config(args.site)
    summary = partition_readings([str(p) for p in args.readings], config=config, out=args.out,
                                 batch_rows=args.batch_rows)
    sys.stderr.write(f"partition: {summary.readings:,} readings into {len(summary.buckets)} buckets "
                     f"in {summary.dataset}\n")
    return EXIT_OK


def dask_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("on a Dask cluster (docs/scale.md)")
    group.add_argument("--dask", metavar="SCHEDULER",
                       help="rate on the dask.distributed scheduler at SCHEDULER (tcp://host:8786), or "
                            "'local[:N]' on N worker processes here; READINGS is a `rating partition` "
                            "dataset (or files, partitioned first beside --out); --out is required and "
                            "gets a Parquet dataset")
    group.add_argument("--previous", type=Path, metavar="CHARGES",
                       help="with --dask: the charges rated before (a Parquet file or folder); "
                            "writes OUT/changes/ (reversal and replacement lines)")


def rate_on_dask(args: argparse.Namespace) -> int:
    """`rating rate --dask`: the results as a dataset in --out."""
    from rating.config.loader import load_config
    from rating.distributed import rate_dataset, rate_readings, read_results
    from rating.distributed.layout import PARTITION_FILE

    files = ("charges", "anomalies", "apportionment")
    if args.out is None or any(getattr(args, name) is not None for name in files):
        raise InputError("--dask writes a results folder: give --out DIR (and no --charges/--anomalies)")
    if args.format not in (None, "parquet"):
        raise InputError("--dask writes Parquet: leave out --format")
    config = load_config(args.site)
    options = {"out": args.out, "previous": args.previous, "now": args.now,
               "unknown_meters": args.unknown_meters}
    with _client(args.dask) as client:
        if len(args.readings) == 1 and (args.readings[0] / PARTITION_FILE).is_file():
            run = rate_dataset(config, args.readings[0], client, **options)
        else:
            run = rate_readings([str(p) for p in args.readings], config=config, client=client, **options)
    sys.stderr.write(f"dask: {run.readings:,} readings in {len(run.tasks)} tasks, {run.seconds:.1f} s; "
                     f"{run.lines('charges'):,} charge lines in {run.out}\n")
    if not args.no_summary:
        from rating.cli.summary import render_summary

        tables = read_results(run.out)
        sys.stdout.write(render_summary(tables["charges"], tables["anomalies"], config,
                                        max_accounts=args.accounts))
    return EXIT_OK


@contextlib.contextmanager
def _client(scheduler: str) -> Iterator:
    try:
        import distributed
    except ImportError:
        raise InputError("--dask needs dask.distributed: pip install 'rating[distributed]'") from None
    if scheduler == "local" or scheduler.startswith("local:"):
        workers = scheduler.partition(":")[2] or None
        if workers is not None and not (workers.isdigit() and int(workers) >= 1):
            raise InputError(f"--dask {scheduler}: local:N needs N >= 1 worker processes")
        with distributed.LocalCluster(n_workers=None if workers is None else int(workers),
                                      threads_per_worker=1, processes=True, dashboard_address=None,
                                      silence_logs=logging.WARNING) as cluster:
            with distributed.Client(cluster) as client:
                yield client
        return
    try:
        client = distributed.Client(scheduler, timeout=f"{SCHEDULER_CONNECT_TIMEOUT_S}s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise InputError(f"cannot reach the Dask scheduler: {exc}", where=scheduler) from None
    with client:
        yield client
