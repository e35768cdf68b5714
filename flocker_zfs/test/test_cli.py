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
from ..testing import FakeNetwork, FakeZFS

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
        self.assertEqual(row.split()[1:6], ["this", "node", "1", "writable", "64.0M"])
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


class PeerCommandTests(SynchronousTestCase):
    """
    Tests for ``push``, ``handoff`` and ``recover`` over a fake network.
    """

    def setUp(self):
        root = os.path.abspath(self.mktemp())
        self.network = FakeNetwork(root)
        self.addCleanup(self.network.unmount_all)
        self.a = self.network.add_node("a.example")
        self.b = self.network.add_node("b.example")
        os.makedirs(root + "/etc")
        self.identity = root + "/etc/id"
        self.known = root + "/etc/known_hosts"
        for path in (self.identity, self.known):
            with open(path, "w") as handle:
                handle.write("x\n")
            os.chmod(path, 0o600)
        self.common = ["--pool", "flocker", "--mount-root", root + "/cli-a",
                       "--node-file", root + "/etc/node.json"]
        self.ssh = ["--ssh-identity", self.identity, "--ssh-known-hosts", self.known]
        self.peers = []

    def make_peer(self, reactor, config, host, port):
        self.peers.append((host, port, config.port))
        return self.a.peer(host)

    def cli(self, *argv):
        out, err = io.StringIO(), io.StringIO()
        ssh = self.ssh if argv[0] in ("push", "handoff", "recover") else []
        argv = list(argv[:1]) + self.common + ssh + list(argv[1:])
        status = self.successResultOf(run(self.network.clock, argv, out, err, self.a.fake,
                                          self.make_peer))
        return status, out.getvalue(), err.getvalue()

    def test_push_then_handoff(self):
        """
        ``push`` sends the dataset to the peer; ``handoff`` makes the peer the
        writable owner, and ``--json`` reports the generation.
        """
        self.assertEqual(self.cli("create", DATASET)[0], 0)
        status, out, err = self.cli("push", DATASET, "b.example")
        self.assertEqual((status, err), (0, ""))
        self.assertIn("full stream", out)
        status, out, _ = self.cli("handoff", DATASET, "b.example:2222", "--json")
        self.assertEqual((status, json.loads(out)["generation"]), (0, 2))
        self.assertEqual(self.peers[-1][:2], ("b.example", 2222))
        replica = self.successResultOf(self.b.backend.get(DATASET))
        self.assertTrue(replica.writable)
        self.assertIn("nothing to do", self.cli("recover", DATASET, "b.example")[1])

    def test_hostile_peer(self):
        """
        A peer that could be read as an ssh option or a shell command is
        refused with one line before anything runs.
        """
        self.cli("create", DATASET)
        before = len(self.a.fake.commands)
        for bad in ["-oProxyCommand=touch /tmp/pwned", "a;id", "$(id)", "host name",
                    "[::1]:99999", "h:0"]:
            status, _, err = self.cli("push", "--", DATASET, bad)
            self.assertEqual((bad, status, err.count("\n")), (bad, 1, 1))
        self.assertEqual((len(self.a.fake.commands), self.peers), (before, []))

    def test_identity_permissions(self):
        """
        An identity file readable by others is refused with the chmod fix.
        """
        self.cli("create", DATASET)
        os.chmod(self.identity, 0o644)
        status, _, err = self.cli("push", DATASET, "b.example")
        self.assertEqual(status, 1)
        self.assertIn("chmod 600", err)

    def test_missing_known_hosts(self):
        """
        A missing known_hosts file is refused, saying how to record keys.
        """
        self.cli("create", DATASET)
        os.remove(self.known)
        status, _, err = self.cli("push", DATASET, "b.example")
        self.assertEqual(status, 1)
        self.assertIn("ssh-keyscan", err)

    def test_unreachable(self):
        """
        An unreachable peer exits 1 with one line naming it.
        """
        self.cli("create", DATASET)
        self.network.partition("b.example")
        status, _, err = self.cli("push", DATASET, "b.example")
        self.assertEqual(status, 1)
        self.assertIn("peer unreachable: b.example", err)
