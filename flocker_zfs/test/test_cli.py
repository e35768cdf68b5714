"""
Tests for :mod:`flocker_zfs._cli`, on the fake ZFS.
"""

import io
import json
import os
import uuid

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from .._cli import run
from ..testing import FakeZFS

DATASET = "6f1c2b5e-3d4a-4b7c-9e8f-0a1b2c3d4e5f"


class CLITests(SynchronousTestCase):
    """
    Tests for the ``flocker-zfs`` subcommands.
    """

    def setUp(self):
        self.fake = FakeZFS(profile="zfs-fuse")
        self.fake.add_pool("flocker")
        base = os.path.abspath(self.mktemp())
        self.common = ["--pool", "flocker", "--mount-root", os.path.join(base, "mnt"),
                       "--node-file", os.path.join(base, "node.json")]
        self.node_file = os.path.join(base, "node.json")

    def cli(self, *argv):
        out, err = io.StringIO(), io.StringIO()
        argv = list(argv[:1]) + self.common + list(argv[1:])
        status = self.successResultOf(run(MemoryReactorClock(), argv, out, err, self.fake))
        return status, out.getvalue(), err.getvalue()

    def test_status_empty(self):
        """
        ``status`` on an empty pool says so, without creating an identity.
        """
        status, out, err = self.cli("status")
        self.assertEqual((status, err), (0, ""))
        self.assertIn("no datasets in pool flocker", out)
        self.assertFalse(os.path.exists(self.node_file))

    def test_create_then_status(self):
        """
        A created dataset shows in ``status`` as writable and owned here,
        and in ``status --json``.
        """
        status, out, _ = self.cli("create", DATASET, "--size", "64M")
        self.assertEqual(status, 0)
        self.assertIn(DATASET, out)
        _, table, _ = self.cli("status")
        row = [line for line in table.splitlines() if line.startswith(DATASET)][0]
        self.assertEqual(row.split()[1:5], ["this", "node", "writable", "64.0M"])
        _, raw, _ = self.cli("status", "--json")
        [entry] = json.loads(raw)["datasets"]
        self.assertEqual((entry["dataset_id"], entry["owned_here"], entry["maximum_size"]),
                         (DATASET, True, 64 * 1024 * 1024))

    def test_resize_snapshot_destroy(self):
        """
        ``resize``, ``snapshot`` and ``destroy`` act on the dataset.
        """
        self.cli("create", DATASET)
        self.assertEqual(self.cli("resize", DATASET, "1G")[0], 0)
        status, out, _ = self.cli("snapshot", DATASET, "--name", "first")
        self.assertEqual((status, out), (0, "snapshot %s@first\n" % (DATASET,)))
        self.assertEqual(self.cli("destroy", DATASET)[0], 0)
        self.assertIn("no datasets", self.cli("status")[1])

    def test_user_error_one_line(self):
        """
        A bad dataset id exits 1 with one line naming it and the fix, and
        runs no zfs command.
        """
        before = len(self.fake.commands)
        status, out, err = self.cli("create", "not-a-uuid")
        self.assertEqual(status, 1)
        self.assertEqual(err.count("\n"), 1)
        self.assertIn("'not-a-uuid'", err)
        self.assertIn("Fix:", err)
        self.assertEqual(len(self.fake.commands), before)

    def test_missing_pool(self):
        """
        A missing pool exits 1 with the ``zpool create`` fix.
        """
        self.common[1] = "nopool"
        status, _, err = self.cli("status")
        self.assertEqual(status, 1)
        self.assertIn("zpool create nopool", err)

    def test_missing_dataset(self):
        """
        Destroying an unknown dataset exits 1 naming it.
        """
        status, _, err = self.cli("destroy", str(uuid.uuid4()))
        self.assertEqual(status, 1)
        self.assertIn("dataset not found", err)
