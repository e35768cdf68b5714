"""
The ``flocker-zfs`` commands against real ZFS (zfs-fuse here, OpenZFS on a
real host), through :func:`flocker_zfs._cli.run` with the real process
runner, checking what a user sees: the output, the exit status, and the
files in the datasets' mountpoints.

Skipped without root or a working ZFS; a failure under ``CI=true`` (see
:mod:`flocker_zfs.test.realzfs`).  ``push`` and ``handoff`` over real sshd
are covered by :mod:`flocker_zfs.test.test_replication_real`.
"""

import errno
import io
import json
import os
import re
import uuid

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from .._actions import COMMAND, DISCOVER
from .._cli import run
from . import realzfs

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


def _human_mib(value):
    """The table's rendering of a size of at least 1 MiB (and below 1 GiB)."""
    return "%.1fM" % (value / MiB,)
