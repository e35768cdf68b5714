"""
Tests for :mod:`flocker_zfs._actions`.
"""

from twisted.trial.unittest import SynchronousTestCase

from .. import _actions


class ActionTypeTests(SynchronousTestCase):
    """
    Tests for the eliot action type constants.
    """

    def test_unique_and_named(self):
        """
        Every action type is unique, listed in ``ALL`` and follows
        ``flocker_zfs:<layer>:<verb>``.
        """
        values = [v for k, v in vars(_actions).items() if k.isupper() and k != "ALL"]
        self.assertEqual(sorted(values), sorted(set(_actions.ALL)))
        self.assertEqual(len(values), len(set(values)))
        for value in values:
            self.assertEqual((value.split(":")[0], len(value.split(":"))), ("flocker_zfs", 3))
