"""
The reference agent on real ZFS over real SSH (the issue's "done" check):
two nodes, each with its own ``agent.yml``, its own file-backed pool and its
own private sshd whose forced command is ``flocker-zfs peer-serve`` for that
pool.  Both agents run in this trial process with short poll intervals and
converge a deployment file: a dataset is created on A, then moved to B by
changing its primary in the file; its data arrives on B and A keeps a
read-only replica.  Once A is named as a replica, files written on B
afterwards reach it on the replication schedule.  And a split brain (the
dataset created on both nodes) is settled: A's copy, not the primary's, is
made read-only with its data, and is replaced by a replica only once the
operator destroys it.

Skipped without root, ZFS or sshd; a failure under ``CI=true``.
"""

import errno
import hashlib
import os
import uuid

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.python import log
from twisted.trial.unittest import TestCase

from .._agent import agent_from_config
from .._conflict import CONFLICT_PREFIX, is_conflict_copy
from .._config import load_config
from .realzfs import time_scale
from .test_replication_real import _Node

#: Seconds between agent iterations here (production: 10).
POLL = 0.5

#: Seconds between pushes of new data to replicas here (production: 60).
REPLICATION_INTERVAL = 2

#: Seconds (wall time) a step may take before the test gives up; longer
#: where real ZFS is slow (see ``time_scale``).
DEADLINE = 120.0 * time_scale()


def _digest(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


class RealAgentTests(TestCase):
    """
    Two agents converge a deployment file on two real pools over real sshd.
    """

    timeout = 400 * time_scale()

    def setUp(self):
        self.a = _Node(self, "a")
        self.b = _Node(self, "b")
        self.deployment = os.path.join(self.a.mount_root + "-deployment.yml")
        self.addCleanup(lambda: os.path.exists(self.deployment)
                        and os.remove(self.deployment))
        self.dataset_id = str(uuid.uuid4())

    def write_config(self, node, other):
        """
        Write ``node``'s own ``agent.yml``: its pool, mount root and
        identity, the key and known_hosts that reach ``other``'s sshd, the
        shared deployment file, and short poll and replication intervals.

        :return: its path.
        """
        path = node.mount_root + "-agent.yml"
        with open(path, "w") as handle:
            handle.write(
                "version: 1\n"
                "control-service: {hostname: control.example, port: 4524}\n"
                "dataset:\n"
                "  backend: zfs\n"
                "  pool: %s\n"
                "  mount_root: %s\n"
                "  node_file: %s\n"
                "  ssh_identity: %s\n"
                "  ssh_known_hosts: %s\n"
                "  deployment: %s\n"
                "  poll_interval: %s\n"
                "  replication_interval: %s\n"
                "  max_parallel: 2\n" % (
                    node.pool, node.mount_root, node.node_file, other.sshd.client_key,
                    other.sshd.known_hosts, self.deployment, POLL, REPLICATION_INTERVAL))
        self.addCleanup(os.remove, path)
        return path

    def write_deployment(self, primary, replicas=()):
        with open(self.deployment + ".new", "w") as handle:
            handle.write(
                "nodes:\n"
                "  - {uuid: %s, address: 127.0.0.1, ssh_port: %d}\n"
                "  - {uuid: %s, address: 127.0.0.1, ssh_port: %d}\n"
                "datasets:\n"
                "  - id: %s\n"
                "    primary: %s\n"
                "    maximum_size: 64M\n"
                "    replicas: [%s]\n" % (
                    self.a.node_uuid, self.a.sshd.port, self.b.node_uuid, self.b.sshd.port,
                    self.dataset_id, primary.node_uuid,
                    ", ".join(node.node_uuid for node in replicas)))
        # Replaced at once: an agent never reads half a file.
        os.rename(self.deployment + ".new", self.deployment)

    async def start_agent(self, node, other):
        config = load_config(self.write_config(node, other))
        agent = await agent_from_config(reactor, config)
        self.assertEqual((agent.node_uuid, agent.poll_interval, agent.replication_interval),
                         (node.node_uuid, POLL, REPLICATION_INTERVAL))
        agent.startService()
        self.addCleanup(agent.stopService)
        return agent

    async def copies(self, one_writable=True):
        """
        :return: ``{node name: Dataset}`` of the nodes holding the dataset;
            checks on the way that at most one copy is writable (unless
            ``one_writable`` is false: a split brain being settled).
        """
        found, ignored = {}, {}
        for node in (self.a, self.b):
            for attempt in range(5):
                state = await node.backend.discover()
                dataset = state.datasets.get(self.dataset_id)
                if dataset is not None or node.name not in getattr(self, "holding", ()):
                    break
                # zfs-fuse under heavy load has answered one recursive
                # listing without a filesystem it holds: look again.
                log.msg("%s's copy missing from a listing (attempt %d)"
                        % (node.name, attempt + 1))
                await deferLater(reactor, 0.5, lambda: None)
            if dataset is not None:
                found[node.name] = dataset
            ignored[node.name] = list(state.ignored)
        # Nothing lost: a node that held a copy keeps one.
        missing = sorted(set(getattr(self, "holding", ())) - set(found))
        self.assertEqual(missing, [], "copies vanished from discovery: %r; found %r; "
                         "ignored %r" % (missing, found, ignored))
        # Held once complete: a create undone because its mount failed
        # never held anything.
        self.holding = set(getattr(self, "holding", ())) | {
            name for name, dataset in found.items() if dataset.mounted or dataset.snapshots}
        writable = [name for name, dataset in found.items() if dataset.writable]
        self.assertTrue(len(writable) <= 1 or not one_writable, writable)
        return found

    async def wait_until(self, predicate, what, one_writable=True):
        """
        Poll :meth:`copies` (with ``one_writable``) until
        ``predicate(copies)`` holds (it may look at anything else, such as
        files).

        :return: the copies.
        """
        started = reactor.seconds()
        while True:
            found = await self.copies(one_writable)
            if predicate(found):
                return found
            if reactor.seconds() - started > DEADLINE:
                self.fail("not converged within %g s: %s; copies: %r"
                          % (DEADLINE, what, found))
            await deferLater(reactor, 0.2, lambda: None)

    def replica_has(self, name, content):
        """
        :return: a predicate: A's replica holds file ``name`` with ``content``.
            It lists the directory before opening the file: zfs-fuse keeps a
            failed lookup cached after a receive brings the file, so an
            early ``open`` would keep failing.
        """
        path = self.a.path(self.dataset_id, name)

        def predicate(found):
            try:
                if name not in os.listdir(os.path.dirname(path)):
                    return False
                with open(path) as handle:
                    return handle.read() == content
            except FileNotFoundError:
                return False    # received, not mounted yet (its mountpoint is made then)
        return predicate

    async def test_create_then_move(self):
        """
        The agents create the dataset on A (writable, 64 MiB limit); after
        the file names B as the primary, B owns it, writable, with the
        files written on A, and A keeps a read-only replica owned by B.
        Once the file also names A as a replica, what B writes afterwards
        reaches A's replica.
        """
        await self.start_agent(self.a, self.b)
        await self.start_agent(self.b, self.a)
        self.write_deployment(primary=self.a)
        # Mounted too: a create whose mount fails (zfs-fuse in a fresh
        # chroot has answered "Input/output error" once) is undone and
        # retried by the agent, and writing before would miss the dataset.
        found = await self.wait_until(lambda found: "a" in found and found["a"].mounted,
                                      "created and mounted on A")
        self.assertEqual((sorted(found), found["a"].writable, found["a"].maximum_size),
                         (["a"], True, 64 * 1024 * 1024))
        with open(self.a.path(self.dataset_id, "data"), "wb") as handle:
            handle.write(os.urandom(4 * 1024 * 1024))
        with open(self.a.path(self.dataset_id, "hello.txt"), "w") as handle:
            handle.write("written on A\n")
        digest = _digest(self.a.path(self.dataset_id, "data"))

        self.write_deployment(primary=self.b)
        found = await self.wait_until(
            lambda found: "b" in found and found["b"].writable
            and found["a"].owner == self.b.node_uuid and found["a"].handoff is None,
            "moved to B")
        self.assertEqual((found["b"].owner, found["a"].writable, found["b"].maximum_size),
                         (self.b.node_uuid, False, 64 * 1024 * 1024))
        with open(self.b.path(self.dataset_id, "hello.txt")) as handle:
            self.assertEqual(handle.read(), "written on A\n")
        self.assertEqual(_digest(self.b.path(self.dataset_id, "data")), digest)
        with self.assertRaises(OSError) as caught:
            with open(self.a.path(self.dataset_id, "intruder"), "wb") as handle:
                handle.write(b"x")
        self.assertEqual(caught.exception.errno, errno.EROFS)
        with open(self.b.path(self.dataset_id, "from-b.txt"), "w") as handle:
            handle.write("B writes\n")

        # Converged: further iterations change nothing.
        before = await self.copies()
        await deferLater(reactor, POLL * 6, lambda: None)
        after = await self.copies()
        self.assertEqual({name: (d.owner, d.writable, d.generation, list(d.snapshots))
                          for name, d in after.items()},
                         {name: (d.owner, d.writable, d.generation, list(d.snapshots))
                          for name, d in before.items()})

        # Replicas follow writes: A wanted as a replica gets B's files, and a
        # file written after that arrives within the replication interval.
        self.write_deployment(primary=self.b, replicas=[self.a])
        await self.wait_until(self.replica_has("from-b.txt", "B writes\n"),
                              "B's first file on A's replica")
        with open(self.b.path(self.dataset_id, "later.txt"), "w") as handle:
            handle.write("written on B after convergence\n")
        found = await self.wait_until(
            self.replica_has("later.txt", "written on B after convergence\n"),
            "B's later file on A's replica")
        self.assertEqual((found["a"].owner, found["a"].writable, found["b"].writable),
                         (self.b.node_uuid, False, True))

    async def test_split_brain(self):
        """
        Both nodes created the dataset and wrote to it (their deployment
        files disagreed); the file now names B as the primary and A as a
        replica.  A's agent makes A's copy read-only with its files and a
        conflict snapshot; B's copy stays writable and nothing is sent over
        A's.  Once the operator destroys A's copy, B replicates to A.
        """
        for node in (self.a, self.b):
            await node.backend.create(self.dataset_id)
            with open(node.path(self.dataset_id, "mine.txt"), "w") as handle:
                handle.write("written on %s\n" % (node.name,))
        self.write_deployment(primary=self.b, replicas=[self.a])
        await self.start_agent(self.a, self.b)
        await self.start_agent(self.b, self.a)
        found = await self.wait_until(lambda found: not found["a"].writable, "A demoted",
                                      one_writable=False)
        self.assertTrue(found["b"].writable)
        self.assertTrue(is_conflict_copy(found["a"]), found["a"])
        self.assertEqual([s.name[:len(CONFLICT_PREFIX)] for s in found["a"].snapshots],
                         [CONFLICT_PREFIX])
        with open(self.a.path(self.dataset_id, "mine.txt")) as handle:
            self.assertEqual(handle.read(), "written on a\n")
        with self.assertRaises(OSError) as caught:
            with open(self.a.path(self.dataset_id, "intruder"), "wb") as handle:
                handle.write(b"x")
        self.assertEqual(caught.exception.errno, errno.EROFS)

        # Left alone: several iterations send nothing over it.
        await deferLater(reactor, POLL * 6, lambda: None)
        after = await self.copies()
        self.assertEqual(list(after["a"].snapshots), list(found["a"].snapshots))

        await self.a.backend.destroy(self.dataset_id)
        self.holding.discard("a")       # the operator's choice
        has = self.replica_has("mine.txt", "written on b\n")
        found = await self.wait_until(lambda found: "a" in found and has(found),
                                      "B's copy replicated to A")
        self.assertEqual((found["a"].owner, found["a"].writable, found["b"].writable),
                         (self.b.node_uuid, False, True))
