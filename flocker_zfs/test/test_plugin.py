"""
Tests for :mod:`flocker_zfs._plugin`.
"""

import os

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from .._plugin import FLOCKER_BACKEND
from ..errors import ConfigError, InvalidName
from ..interfaces import IStorageBackend


class BackendDescriptionTests(SynchronousTestCase):
    """
    Tests for ``FLOCKER_BACKEND``.
    """

    def test_description(self):
        """
        The description names the ``zfs`` backend, a p2p deployer that needs
        the reactor.
        """
        self.assertEqual(
            (FLOCKER_BACKEND.name, FLOCKER_BACKEND.deployer_type,
             FLOCKER_BACKEND.needs_reactor, FLOCKER_BACKEND.needs_cluster_id),
            ("zfs", "p2p", True, False))

    def test_factory(self):
        """
        The factory builds an ``IStorageBackend`` from the section's keys.
        """
        base = os.path.abspath(self.mktemp())
        backend = FLOCKER_BACKEND.factory(
            MemoryReactorClock(), pool="tank", mount_root=base + "/mnt",
            node_file=base + "/node.json")
        self.assertTrue(verifyObject(IStorageBackend, backend))
        self.assertEqual(backend.pool, "tank")

    def test_unknown_key(self):
        """
        An unknown key is a ``ConfigError`` naming it and the known keys.
        """
        with self.assertRaises(ConfigError) as caught:
            FLOCKER_BACKEND.factory(MemoryReactorClock(), sshport=22)
        self.assertIn("sshport", str(caught.exception))
        self.assertIn("mount_root", str(caught.exception))

    def test_bad_pool(self):
        """
        A bad pool name is refused before anything runs.
        """
        base = os.path.abspath(self.mktemp())
        self.assertRaises(InvalidName, FLOCKER_BACKEND.factory, MemoryReactorClock(),
                          pool="-r", node_file=base + "/node.json")
        self.assertFalse(os.path.exists(base))

    def test_entry_point(self):
        """
        The installed ``flocker.backends`` entry point ``zfs`` loads it.
        """
        from importlib.metadata import entry_points
        found = [ep for ep in entry_points(group="flocker.backends") if ep.name == "zfs"]
        if not found:
            self.skipTest("flocker-zfs is not installed (no entry points)")
        self.assertIs(found[0].load(), FLOCKER_BACKEND)
