"""Batch rating past one process: readings bucketed by their account's shard, one
Dask task per bucket (docs/scale.md).

`partition` writes any readings source as a Parquet dataset of buckets
(`shard=NN/`, the shard of rating.prepaid.store.shards, and `shard=unknown/`
for meters the registry lacks); `run` rates a dataset on a `dask.distributed`
client (any object with its `submit` and `gather`), one task per bucket
(`tasks`) with the engine's own Rater, then one small task per connected set
of shared-area groups (`groups`); `changes` writes what a re-rating changes
against previous charges; `layout` names the folders and files all of them
share. Nothing here imports dask: the caller brings the client.
"""

from rating.distributed.layout import read_results
from rating.distributed.partition import partition_readings
from rating.distributed.run import rate_dataset, rate_readings

__all__ = ["partition_readings", "rate_dataset", "rate_readings", "read_results"]
