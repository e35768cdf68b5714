"""
Tests for :mod:`flocker_zfs.names`.
"""

import uuid

from hypothesis import given, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from ..errors import InvalidDatasetId, InvalidName, NameTooLong
from ..names import (
    MAX_NAME_BYTES, dataset_name, is_dataset_id, shown, snapshot_name, validate_dataset_id,
    validate_mount_root, validate_pool_name, validate_snapshot_name)

HOSTILE = ["", " ", ";", "$(id)", "`id`", "\n", "\0", "@", "#", "/", "%", ".", "..",
           "-F", "-r", "a b", "x" * 300, "\u0430bc", "flocker/x", "p@s", "-oProxyCommand=x"]


class DatasetIdTests(SynchronousTestCase):
    """
    Tests for dataset id validation.
    """

    def test_uuid(self):
        """
        A canonical lowercase UUID is accepted.
        """
        value = str(uuid.uuid4())
        self.assertEqual(validate_dataset_id(value), value)

    def test_hostile(self):
        """
        Hostile strings are refused with ``InvalidDatasetId`` quoting them.
        """
        for bad in HOSTILE + [str(uuid.uuid4()).upper(), "{%s}" % (uuid.uuid4(),),
                              uuid.uuid4().hex, None, 5]:
            with self.assertRaises(InvalidDatasetId) as caught:
                validate_dataset_id(bad)
            self.assertIn("not a lowercase UUID", str(caught.exception))

    @given(st.text())
    def test_only_uuids(self, text):
        """
        Whatever the text, it is accepted only if it is a canonical UUID.
        """
        try:
            canonical = str(uuid.UUID(text)) == text
        except ValueError:
            canonical = False
        self.assertEqual(is_dataset_id(text), canonical)

    @given(st.text())
    def test_never_an_option(self, text):
        """
        No accepted dataset id can be read as an option or hold a separator.
        """
        if is_dataset_id(text):
            self.assertFalse(text.startswith("-"))
            self.assertFalse(set(text) & set("@/# \t\n%"))


class PoolNameTests(SynchronousTestCase):
    """
    Tests for pool name validation.
    """

    def test_valid(self):
        """
        Ordinary pool names are accepted.
        """
        for name in ["flocker", "tank", "p1", "a.b_c:d-e"]:
            self.assertEqual(validate_pool_name(name), name)

    def test_invalid(self):
        """
        Names ZFS refuses, or that could be options, are refused.
        """
        for bad in HOSTILE + ["1pool", "mirror", "mirror2", "raidz1", "draid", "spare",
                              "log", "p/q"]:
            with self.assertRaises(InvalidName):
                validate_pool_name(bad)

    def test_too_long(self):
        """
        A pool name leaving no room for ``<pool>/<uuid>@<snapshot>`` within
        255 bytes is refused with ``NameTooLong``.
        """
        longest_ok = "p" * (MAX_NAME_BYTES - 1 - 36 - 1 - 64)
        validate_pool_name(longest_ok)
        with self.assertRaises(NameTooLong):
            validate_pool_name(longest_ok + "p")
        full = snapshot_name(longest_ok, str(uuid.uuid4()), "s" * 64)
        self.assertEqual(len(full), MAX_NAME_BYTES)


class SnapshotNameTests(SynchronousTestCase):
    """
    Tests for snapshot name validation.
    """

    def test_valid(self):
        """
        Names of letters, digits and ``_.:-`` are accepted.
        """
        for name in ["s", "flocker-20261128T000000Z-abcdef", "a.b:c_d-e"]:
            self.assertEqual(validate_snapshot_name(name), name)

    def test_invalid(self):
        """
        Hostile names, names starting with ``-`` or ``.``, and long names are
        refused.
        """
        for bad in HOSTILE + ["-x", ".x", "x" * 65]:
            with self.assertRaises(InvalidName):
                validate_snapshot_name(bad)

    @given(st.text())
    def test_never_an_option(self, text):
        """
        No accepted snapshot name starts with ``-`` or holds a separator.
        """
        try:
            validate_snapshot_name(text)
        except InvalidName:
            return
        self.assertFalse(text.startswith("-"))
        self.assertFalse(set(text) & set("@/# \t\n%$;`'\""))


class MountRootTests(SynchronousTestCase):
    """
    Tests for mount root validation.
    """

    def test_valid(self):
        """
        Absolute normalised paths are accepted.
        """
        for path in ["/flocker", "/var/lib/flocker", "/"]:
            self.assertEqual(validate_mount_root(path), path)

    def test_invalid(self):
        """
        Relative paths, ``..``, control characters and unnormalised paths
        are refused.
        """
        for bad in ["", "flocker", "./x", "/a/../b", "/a/./b", "/a//b", "/a/", "/a\nb",
                    "/" + "x" * 256, None]:
            with self.assertRaises(InvalidName):
                validate_mount_root(bad)

    def test_fixes(self):
        """
        Each refusal says what is wrong with the path and how to write it,
        not the fix of a bad name.
        """
        for bad, message, fix in [
                ("flocker", "invalid mount_root 'flocker': must be an absolute path",
                 "Give mount_root as an absolute path, such as /flocker."),
                ("", "invalid mount_root '': must be an absolute path",
                 "Give mount_root as an absolute path, such as /flocker."),
                ("/a/../b", "invalid mount_root '/a/../b': must not contain '.' or '..'",
                 "Write mount_root without '.' or '..' components, such as '/b'."),
                ("/a\nb", "invalid mount_root '/a\\nb': contains control characters",
                 "Remove the control characters (a newline, shown as \\n) from mount_root."),
                ("/a//b", "invalid mount_root '/a//b': not normalised",
                 "Write mount_root without repeated or trailing '/', such as '/a/b'."),
                ("/" + "x" * 256, "a component is over 255 bytes",
                 "Shorten each part of mount_root to at most 255 bytes.")]:
            with self.assertRaises(InvalidName) as caught:
                validate_mount_root(bad)
            self.assertIn(message, caught.exception.summary())
            self.assertEqual(caught.exception.fix, fix, bad)


class DatasetNameTests(SynchronousTestCase):
    """
    Tests for :func:`dataset_name`.
    """

    def test_joins(self):
        """
        The ZFS name is ``<pool>/<dataset_id>``.
        """
        value = str(uuid.uuid4())
        self.assertEqual(dataset_name("flocker", value), "flocker/" + value)


class ShownTests(SynchronousTestCase):
    """
    Tests for :func:`shown`, how messages quote a bad value.
    """

    def test_short(self):
        """
        A short value is quoted whole, as ``repr`` writes it (control
        characters escaped).
        """
        self.assertEqual([shown(v) for v in ("a\nb", 5, None)], ["'a\\nb'", "5", "None"])

    def test_cut(self):
        """
        A long value is cut to the limit, ending in ``...``.
        """
        self.assertEqual(shown("x" * 100), "'" + "x" * 76 + "...")
        self.assertEqual(shown("x" * 100, limit=10), "'xxxxxx...")
        self.assertEqual(shown("x" * 78), "'" + "x" * 78 + "'")
