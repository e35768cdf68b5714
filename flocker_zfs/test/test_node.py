"""
Tests for :mod:`flocker_zfs.node`.
"""

import json
import os
import stat

from twisted.trial.unittest import SynchronousTestCase

from ..errors import ConfigError
from ..names import is_dataset_id
from ..node import load_node_uuid


class LoadNodeUUIDTests(SynchronousTestCase):
    """
    Tests for :func:`load_node_uuid`.
    """

    def setUp(self):
        self.path = os.path.join(os.path.abspath(self.mktemp()), "etc", "node.json")

    def test_created_once(self):
        """
        The first call creates the file with a new uuid; later calls return
        the same uuid.
        """
        first = load_node_uuid(self.path)
        self.assertTrue(is_dataset_id(first))
        self.assertEqual(load_node_uuid(self.path), first)
        with open(self.path) as handle:
            self.assertEqual(json.load(handle), {"uuid": first})
        self.assertEqual(stat.S_IMODE(os.stat(self.path).st_mode) & 0o022, 0)

    def test_missing_no_create(self):
        """
        Without ``create`` a missing file is a ``ConfigError`` pointing at
        ``flocker-zfs create``.
        """
        with self.assertRaises(ConfigError) as caught:
            load_node_uuid(self.path, create=False)
        self.assertIn("flocker-zfs create", str(caught.exception))
        self.assertFalse(os.path.exists(self.path))

    def test_malformed(self):
        """
        A malformed file is a ``ConfigError`` and is never replaced.
        """
        os.makedirs(os.path.dirname(self.path))
        for content in [b"", b"{", b'{"uuid": 5}', b'{"uuid": "x"}', b"[1]", b"\xff"]:
            with open(self.path, "wb") as handle:
                handle.write(content)
            with self.assertRaises(ConfigError):
                load_node_uuid(self.path)
            with open(self.path, "rb") as handle:
                self.assertEqual(handle.read(), content)
