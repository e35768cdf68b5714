"""
Tests for :mod:`flocker_zfs.node`.
"""

import json
import os
import stat

from twisted.trial.unittest import SynchronousTestCase

from ..errors import ConfigError
from ..names import is_dataset_id
from ..node import MAX_NODE_FILE_BYTES, load_node_uuid
from .test_files import not_regular_files


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

    def test_not_a_file(self):
        """
        ``--node-file /dev/zero`` (which never ends), a named pipe or a
        directory is refused without being read or waited on, naming the
        file and the fix; nothing is created.
        """
        cases = not_regular_files(self)
        for path, kind in cases:
            for create in (True, False):
                with self.assertRaises(ConfigError) as caught:
                    load_node_uuid(path, create=create)
                self.assertEqual(caught.exception.summary(),
                                 "node identity file %s is not a regular file but %s"
                                 % (path, kind))
                self.assertIn("--node-file", caught.exception.fix)
        self.assertEqual(os.listdir(cases[-1][0]), [])

    def test_too_large(self):
        """
        A file larger than a node identity file ever is (a wrong path) is
        refused unread.
        """
        os.makedirs(os.path.dirname(self.path))
        with open(self.path, "wb") as handle:
            handle.truncate(MAX_NODE_FILE_BYTES + 1)
        with self.assertRaises(ConfigError) as caught:
            load_node_uuid(self.path)
        self.assertEqual(caught.exception.summary(),
                         "node identity file %s is larger than 65536 bytes (64K), more than "
                         "such a file ever holds" % (self.path,))
        self.assertIn("--node-file", caught.exception.fix)

    def test_unreadable(self):
        """
        A path that cannot be read names the file and why.
        """
        os.makedirs(os.path.dirname(self.path))
        with open(self.path, "w") as handle:
            handle.write("{}")
        with self.assertRaises(ConfigError) as caught:
            load_node_uuid(self.path + "/node.json", create=False)
        self.assertEqual(caught.exception.summary(),
                         "cannot read node identity file %s/node.json: not a directory"
                         % (self.path,))
