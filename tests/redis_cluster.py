"""A throwaway Redis Cluster for tests: three masters and a replica of each,
six redis-server processes on free loopback ports in a temporary folder,
joined by `redis-cli --cluster create`. `reshard()` moves slots from one
master to another while clients run (MIGRATING/IMPORTING, then MIGRATE of
each key, as `redis-cli --cluster reshard` does); `failover()` promotes a
replica of a master (`CLUSTER FAILOVER` on the replica)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.servers import RedisServer, free_port


class RedisClusterServers:
    def __init__(self, masters: int = 3, replicas: int = 1):
        self.folder = Path(tempfile.mkdtemp(prefix="rating-redis-cluster-"))
        options = ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                   "--cluster-node-timeout", "2000", "--repl-diskless-sync-delay", "0")
        # the cluster bus on a port of its own (by default port + 10000, past 65535 for high ports)
        self.nodes = [RedisServer(self.folder / f"node{i}",
                                  options=(*options, "--cluster-port", str(free_port())))
                      for i in range(masters * (1 + replicas))]
        self.masters, self.replicas = masters, replicas

    @property
    def url(self) -> str:
        """What `RedisStore` takes: any node; the client finds the others."""
        return f"redis+cluster://127.0.0.1:{self.nodes[0].port}/0"

    def cli(self, port: int, *args: str, timeout_s: float = 60) -> str:
        done = subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", str(port), *args],
                              capture_output=True, text=True, timeout=timeout_s, check=True)
        return done.stdout.strip()

    def start(self) -> RedisClusterServers:
        for node in self.nodes:
            node.start()
        if self.masters == 1 and self.replicas == 0:  # redis-cli creates clusters of 3 masters or more
            self.cli(self.nodes[0].port, "cluster", "addslotsrange", "0", "16383")
            self.wait_ok()
            return self
        addresses = [f"127.0.0.1:{n.port}" for n in self.nodes]
        subprocess.run(["redis-cli", "--cluster", "create", *addresses, "--cluster-replicas",
                        str(self.replicas), "--cluster-yes"], capture_output=True, text=True,
                       timeout=120, check=True)
        self.wait_ok()
        return self

    def wait_ok(self, timeout_s: float = 60) -> None:
        """Every node sees the cluster as ok, every slot served, replicas in sync."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            states = [self.cli(n.port, "cluster", "info") for n in self.nodes if n.proc is not None]
            served = all("cluster_state:ok" in s and "cluster_slots_assigned:16384" in s for s in states)
            if served and len(self.master_ports()) == self.masters and self._replicas_synced():
                return
            time.sleep(0.1)
        raise TimeoutError("the Redis cluster did not become ok")

    def _replicas_synced(self) -> bool:
        """Every replica has its master's data: only then may it take over."""
        replicas = [p for p, (_, role) in self.node_ids().items() if role == "slave"]
        return len(replicas) == self.masters * self.replicas and all(
            "master_link_status:up" in self.cli(p, "info", "replication") for p in replicas)

    def node_ids(self) -> dict[int, tuple[str, str]]:
        """port -> (node id, 'master' or 'slave') as the first live node sees it."""
        live = next(n for n in self.nodes if n.proc is not None)
        found = {}
        for line in self.cli(live.port, "cluster", "nodes").splitlines():
            node_id, address, flags = line.split()[:3]
            port = int(address.split("@")[0].rsplit(":", 1)[1])
            found[port] = (node_id, "master" if "master" in flags else "slave")
        return found

    def master_ports(self) -> list[int]:
        return sorted(p for p, (_, role) in self.node_ids().items() if role == "master")

    def flush(self) -> None:
        for port in self.master_ports():
            self.cli(port, "flushall")

    def reshard(self, source_port: int, target_port: int, slots: int) -> None:
        ids = self.node_ids()
        subprocess.run(["redis-cli", "--cluster", "reshard", f"127.0.0.1:{source_port}",
                        "--cluster-from", ids[source_port][0], "--cluster-to", ids[target_port][0],
                        "--cluster-slots", str(slots), "--cluster-yes", "--cluster-pipeline", "10"],
                       capture_output=True, text=True, timeout=300, check=True)

    def failover(self, master_port: int) -> int:
        """Promote a replica of `master_port`; the replica's port."""
        master_id = self.node_ids()[master_port][0]
        for node in self.nodes:
            if node.proc is not None and node.port != master_port:
                info = self.cli(node.port, "cluster", "nodes")
                me = next(line for line in info.splitlines() if "myself" in line)
                if me.split()[3] == master_id:
                    self.cli(node.port, "cluster", "failover")
                    self._wait_master(node.port)
                    return node.port
        raise RuntimeError(f"no replica of {master_port}")

    def _wait_master(self, port: int, timeout_s: float = 30) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.node_ids().get(port, ("", ""))[1] == "master":
                self.wait_ok()
                return
            time.sleep(0.1)
        raise TimeoutError(f"node {port} did not become a master")

    def close(self) -> None:
        for node in self.nodes:
            node.stop()
        shutil.rmtree(self.folder, ignore_errors=True)
