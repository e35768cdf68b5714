"""
The ``flocker-zfs`` commands against real ZFS (zfs-fuse here, OpenZFS on a
real host), through :func:`flocker_zfs._cli.run` with the real process
runner, checking what a user sees: the output, the exit status, and the
files in the datasets' mountpoints.

Also: ``push`` and ``handoff`` between two real pools over real sshd (the
replication itself is covered in depth by
:mod:`flocker_zfs.test.test_replication_real`), and ``agent`` as a real
process that converges a deployment file and exits 0 on SIGTERM.

Skipped without root, a working ZFS (or sshd, for the peer commands); a
failure under ``CI=true`` (see :mod:`flocker_zfs.test.realzfs`).
"""

import errno
import io
import json
import os
import re
import signal
import subprocess
import sys
import uuid

from twisted.internet import reactor
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from .._actions import CHANGE_CREATE, COMMAND, DISCOVER
from .._cli import run
from . import realzfs
from .test_replication_real import _REPOSITORY, _Node

MiB = 1024 * 1024


def _fill(path, limit, chunk=MiB):
    """
    Write ``chunk``-sized blocks to a new file at ``path``, syncing each,
    until a write fails or ``limit`` bytes are written.

    :return: ``(bytes written, the errno that stopped it or None)``.
    """
    written = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        while written < limit:
            try:
                written += os.write(fd, os.urandom(chunk))
                os.fsync(fd)
            except OSError as error:
                return written, error.errno
    finally:
        try:
            os.close(fd)
        except OSError:
            pass    # the close of a file over quota may fail too
    return written, None


class RealCLITests(TestCase):
    """
    ``status``, ``create``, ``resize``, ``snapshot`` and ``destroy`` on a
    fresh file-backed pool.
    """

    timeout = 180

    def setUp(self):
        realzfs.require_real_zfs()
        # Cleanups run last-in first-out: the pool goes before the mount root.
        self.mount_root = realzfs.make_mount_root(self)
        self.pool = realzfs.make_pool(self)
        self.node_file = self.mount_root + "-node.json"
        self.addCleanup(lambda: os.path.exists(self.node_file) and os.remove(self.node_file))
        self.common = ["--pool", self.pool, "--mount-root", self.mount_root,
                       "--node-file", self.node_file]
        self.dataset_id = str(uuid.uuid4())

    async def cli(self, *argv):
        """
        Run ``flocker-zfs ARGV`` (with this test's pool options).

        :return: ``(exit status, stdout, stderr)``.
        """
        out, err = io.StringIO(), io.StringIO()
        argv = list(argv[:1]) + self.common + list(argv[1:])
        status = await run(reactor, argv, out, err,
                           default_config=self.mount_root + "-no-agent.yml", environ={})
        return status, out.getvalue(), err.getvalue()

    async def json(self, *argv):
        """:return: the JSON printed by a command that must succeed."""
        status, out, err = await self.cli(*(argv + ("--json",)))
        self.assertEqual((status, err), (0, ""), argv)
        return json.loads(out)

    async def status_row(self):
        """:return: the cells of the dataset's row in the ``status`` table."""
        status, out, err = await self.cli("status")
        self.assertEqual((status, err), (0, ""))
        [row] = [line for line in out.splitlines() if line.startswith(self.dataset_id)]
        return re.split(r" {2,}", row)

    def assertOneLineError(self, err, part):
        self.assertEqual(err.count("\n"), 1, err)
        self.assertTrue(err.startswith("flocker-zfs: error: "), err)
        self.assertIn(". Fix: ", err)
        self.assertIn(part, err)

    async def test_create_write_snapshot_status(self):
        """
        ``create`` mounts a writable dataset where it says; data written
        there shows in ``status`` (used space), and so does a snapshot.
        """
        created = await self.json("create", self.dataset_id, "--size", "32M")
        mountpoint = os.path.join(self.mount_root, self.dataset_id)
        self.assertEqual((created["mountpoint"], created["state"], created["maximum_size"]),
                         (mountpoint, "writable", 32 * MiB))
        self.assertTrue(os.path.ismount(mountpoint))
        with open(os.path.join(mountpoint, "data"), "wb") as handle:
            handle.write(os.urandom(4 * MiB))
        snapshot = await self.json("snapshot", self.dataset_id, "--name", "first")
        self.assertEqual(snapshot["name"], "first")
        document = await self.json("status")
        [entry] = document["datasets"]
        self.assertEqual((document["pool"], entry["dataset_id"], entry["owned_here"],
                          entry["newest_snapshot"]),
                         (self.pool, self.dataset_id, True, "first"))
        self.assertGreaterEqual(entry["used"], 4 * MiB)
        self.assertEqual(await self.status_row(), [
            self.dataset_id, "this node", "writable", "32.0M", _human_mib(entry["used"]),
            "first", "-", mountpoint])

    async def test_resize_enforced(self):
        """
        The size limit stops writes near it; ``resize`` raises it so more
        fits, and refuses (one line, exit 1) to go below the space used.
        """
        await self.json("create", self.dataset_id, "--size", "8M")
        mountpoint = os.path.join(self.mount_root, self.dataset_id)
        written, stopped = _fill(os.path.join(mountpoint, "a"), 64 * MiB)
        self.assertIn(stopped, (errno.EDQUOT, errno.ENOSPC))
        self.assertLess(written, 16 * MiB)
        resized = await self.json("resize", self.dataset_id, "64M")
        self.assertEqual(resized["maximum_size"], 64 * MiB)
        self.assertEqual((await self.status_row())[3], "64.0M")
        more, stopped = _fill(os.path.join(mountpoint, "b"), 16 * MiB)
        self.assertEqual((more, stopped), (16 * MiB, None))
        await self.json("snapshot", self.dataset_id)     # settles space accounting
        status, out, err = await self.cli("resize", self.dataset_id, "2M")
        self.assertEqual((status, out), (1, ""))
        self.assertOneLineError(err, self.dataset_id)
        self.assertEqual((await self.status_row())[3], "64.0M")

    async def test_destroy(self):
        """
        ``destroy`` removes the dataset and its mountpoint; ``status`` no
        longer lists it.
        """
        await self.json("create", self.dataset_id)
        mountpoint = os.path.join(self.mount_root, self.dataset_id)
        with open(os.path.join(mountpoint, "data"), "wb") as handle:
            handle.write(b"x" * 1024)
        await self.json("snapshot", self.dataset_id)
        self.assertEqual(await self.json("destroy", self.dataset_id),
                         {"destroyed": self.dataset_id})
        self.assertFalse(os.path.exists(mountpoint))
        self.assertEqual((await self.json("status"))["datasets"], [])
        status, out, _ = await self.cli("status")
        self.assertIn("no datasets in pool %s" % (self.pool,), out)

    async def test_errors(self):
        """
        A missing dataset and a missing pool exit 1 with one line each.
        """
        status, _, err = await self.cli("destroy", self.dataset_id)
        self.assertEqual(status, 1)
        self.assertOneLineError(err, "dataset not found")
        self.common[1] = self.pool + "x"
        status, _, err = await self.cli("status")
        self.assertEqual(status, 1)
        self.assertOneLineError(err, "zpool create %sx" % (self.pool,))

    async def test_log_file(self):
        """
        ``--log-file`` records each real zfs command (argv, exit status)
        inside the backend's actions.
        """
        log = self.mount_root + "-log.json"
        self.addCleanup(os.remove, log)
        status, _, _ = await self.cli("status", "--log-file", log)
        self.assertEqual(status, 0)
        with open(log) as handle:
            messages = [json.loads(line) for line in handle]
        commands = [m for m in messages if m.get("action_type") == COMMAND
                    and m.get("action_status") == "started"]
        self.assertIn(self.pool, [m["argv"][-1] for m in commands])
        self.assertIn(DISCOVER, {m.get("action_type") for m in messages})


class RealPeerCommandTests(TestCase):
    """
    ``push`` and ``handoff`` from node A's pool to node B's over B's private
    sshd, whose forced command is B's ``flocker-zfs peer-serve``.
    """

    timeout = 300

    def setUp(self):
        self.a = _Node(self, "a")
        self.b = _Node(self, "b")
        self.dataset_id = str(uuid.uuid4())

    async def cli(self, node, *argv):
        """
        ``flocker-zfs ARGV --json`` on ``node``, reaching B over its sshd.

        :return: the JSON it printed (it must succeed).
        """
        sshd = self.b.sshd
        out, err = io.StringIO(), io.StringIO()
        argv = list(argv[:1]) + [
            "--pool", node.pool, "--mount-root", node.mount_root, "--node-file", node.node_file,
            "--json"] + list(argv[1:])
        if argv[0] in ("push", "handoff"):
            argv += ["--ssh-identity", sshd.client_key, "--ssh-known-hosts", sshd.known_hosts,
                     "--ssh-port", str(sshd.port)]
        status = await run(reactor, argv, out, err,
                           default_config=node.mount_root + "-no-agent.yml", environ={})
        self.assertEqual((argv, status, err.getvalue()), (argv, 0, ""))
        return json.loads(out.getvalue())

    def entry(self, document):
        [entry] = [e for e in document["datasets"] if e["dataset_id"] == self.dataset_id]
        return entry

    async def test_push_then_handoff(self):
        """
        ``push`` copies A's data to a read-only replica on B, which A's
        ``status`` lists as holding a replica; ``handoff`` makes B the
        writable owner with A's latest data, as both ``status`` say.
        """
        await self.cli(self.a, "create", self.dataset_id)
        with open(self.a.path(self.dataset_id, "data"), "wb") as handle:
            handle.write(b"first")
        pushed = await self.cli(self.a, "push", self.dataset_id, self.b.sshd.host)
        self.assertEqual((pushed["dataset_id"], pushed["base"]), (self.dataset_id, None))
        with open(self.b.path(self.dataset_id, "data"), "rb") as handle:
            self.assertEqual(handle.read(), b"first")
        self.assertEqual(self.entry(await self.cli(self.a, "status"))["replicas"],
                         [self.b.node_uuid])
        self.assertEqual(self.entry(await self.cli(self.b, "status"))["state"], "replica")
        with open(self.a.path(self.dataset_id, "data"), "wb") as handle:
            handle.write(b"second")
        handed = await self.cli(self.a, "handoff", self.dataset_id,
                                "%s:%d" % (self.b.sshd.host, self.b.sshd.port))
        self.assertEqual(handed["generation"], 2)
        on_b = self.entry(await self.cli(self.b, "status"))
        on_a = self.entry(await self.cli(self.a, "status"))
        self.assertEqual((on_b["state"], on_b["owned_here"], on_a["state"], on_a["owner"]),
                         ("writable", True, "replica", self.b.node_uuid))
        with open(self.b.path(self.dataset_id, "data"), "rb") as handle:
            self.assertEqual(handle.read(), b"second")


class RealAgentTests(TestCase):
    """
    ``flocker-zfs agent`` as a real process on a real pool.
    """

    timeout = 120

    async def test_converges_and_stops_on_sigterm(self):
        """
        The agent creates the deployment's dataset (mounted, with its size
        limit), keeps running, and on SIGTERM stops and exits 0.
        """
        realzfs.require_real_zfs()
        mount_root = realzfs.make_mount_root(self)
        pool = realzfs.make_pool(self)
        files = mount_root + "-agent"
        os.makedirs(files)
        self.addCleanup(lambda: subprocess.run(["rm", "-rf", files]))
        node_uuid, dataset_id = str(uuid.uuid4()), str(uuid.uuid4())
        _write(files + "/node.json", json.dumps({"uuid": node_uuid}))
        _write(files + "/deployment.yml", (
            "nodes:\n  - {uuid: %s, address: 127.0.0.1}\n"
            "datasets:\n  - {id: %s, primary: %s, maximum_size: 16M}\n"
            % (node_uuid, dataset_id, node_uuid)))
        _write(files + "/agent.yml", (
            "dataset:\n  backend: zfs\n  pool: %s\n  mount_root: %s\n  node_file: %s\n"
            "  deployment: %s\n  poll_interval: 0.5\n"
            % (pool, mount_root, files + "/node.json", files + "/deployment.yml")))
        with open(files + "/out", "wb") as out, open(files + "/err", "wb") as err:
            agent = subprocess.Popen(
                [sys.executable, "-m", "flocker_zfs", "agent", "--config", files + "/agent.yml",
                 "--log-file", files + "/log"], stdout=out, stderr=err,
                stdin=subprocess.DEVNULL, env=dict(os.environ, PYTHONPATH=_REPOSITORY))
        self.addCleanup(lambda: agent.poll() is None and (agent.kill(), agent.wait()))
        mountpoint = os.path.join(mount_root, dataset_id)
        for _ in range(300):
            if os.path.ismount(mountpoint) or agent.poll() is not None:
                break
            await deferLater(reactor, 0.1, lambda: None)
        self.assertTrue(os.path.ismount(mountpoint), _read(files + "/err"))
        await deferLater(reactor, 1.0, lambda: None)    # a converged iteration or two
        self.assertIsNone(agent.poll())
        agent.send_signal(signal.SIGTERM)
        for _ in range(300):
            if agent.poll() is not None:
                break
            await deferLater(reactor, 0.1, lambda: None)
        self.assertEqual((agent.poll(), _read(files + "/err")), (0, ""))
        self.assertIn("flocker-zfs agent: stopped", _read(files + "/out"))
        with open(files + "/log") as handle:
            types = [json.loads(line).get("action_type") for line in handle]
        self.assertEqual(types.count(CHANGE_CREATE), 2)      # started and succeeded, once
        status = subprocess.run([realzfs.require_real_zfs()[0], "get", "-H", "-p", "-o", "value",
                                 "refquota", "%s/%s" % (pool, dataset_id)],
                                capture_output=True)
        self.assertEqual(status.stdout.strip(), str(16 * MiB).encode("ascii"))


def _write(path, text):
    with open(path, "w") as handle:
        handle.write(text)


def _read(path):
    with open(path) as handle:
        return handle.read()


def _human_mib(value):
    """The table's rendering of a size of at least 1 MiB (and below 1 GiB)."""
    return "%.1fM" % (value / MiB,)
