"""
Tests for :mod:`flocker_zfs._conflict`: which copies are writable or
conflict copies, which writable copy is kept, and what the operator is told.
"""

from twisted.trial.unittest import SynchronousTestCase

from .._conflict import (
    CONFLICT_PREFIX, conflict_snapshot_name, find_conflicts, is_conflict_copy, keeper,
    writable_copies)
from .._deployer import NodeState
from ..model import Snapshot
from .test_deployer import D0, D1, N0, N1, N2, conflicted, copy, desired, want


def states(*nodes):
    return {n.node_uuid: n for n in nodes}


def node(node_uuid, *datasets):
    return NodeState(node_uuid=node_uuid, datasets={d.dataset_id: d for d in datasets})


class NamesTests(SynchronousTestCase):
    """
    The conflict snapshot's name, and the copies it marks.
    """

    def test_name(self):
        """
        ``flocker-conflict-<UTC time>-<keeper's first 8>-<suffix>``: a valid
        snapshot name that says when and towards which node.
        """
        self.assertEqual(conflict_snapshot_name(86400 + 3723.9, N1, "0a1b2c"),
                         "flocker-conflict-19700102T010203Z-00000002-0a1b2c")

    def test_conflict_copy(self):
        """
        A conflict copy is read-only, without a handoff marker, with a
        conflict snapshot as its newest.
        """
        demoted = conflicted(D0, N0)
        self.assertTrue(is_conflict_copy(demoted))
        self.assertTrue(demoted.snapshots[-1].name.startswith(CONFLICT_PREFIX))
        later = demoted.set(snapshots=demoted.snapshots.append(
            Snapshot(name="later", guid=5000, createtxg=5000)))
        for other in (demoted.set(writable=True), demoted.set(handoff="%s:2" % (N1,)), later,
                      copy(D0, N0), copy(D0, N0, guids=())):
            self.assertFalse(is_conflict_copy(other), other)


class KeeperTests(SynchronousTestCase):
    """
    The writable copy that is kept: the desired primary's, then the highest
    generation, then the greatest node uuid.
    """

    def test_writable_copies(self):
        """
        Every writable copy counts, whoever it names as owner; replicas and
        conflict copies do not.
        """
        nodes = states(node(N0, copy(D0, N1, writable=True)),
                       node(N1, copy(D0, N1, writable=True), copy(D1, N1)),
                       node(N2, conflicted(D0, N2)))
        self.assertEqual(sorted(writable_copies(D0, nodes)), [N0, N1])
        self.assertEqual(writable_copies(D1, nodes), {})

    def test_order(self):
        """
        The primary wins over a higher generation, a higher generation over
        a greater uuid; no writable copy, no keeper.
        """
        older, newer = copy(D0, N0, writable=True), copy(D0, N0, writable=True).set(
            generation=4)
        self.assertEqual(keeper(N0, {N0: older, N1: newer}), N0)
        self.assertEqual(keeper(N2, {N0: newer, N1: older}), N0)
        self.assertEqual(keeper(N2, {N0: older, N1: older}), N1)
        self.assertEqual(keeper(N2, {}), None)


class FindConflictsTests(SynchronousTestCase):
    """
    :func:`find_conflicts` reports each dataset of the deployment in
    conflict, in words naming the nodes and the fix.
    """

    def test_none(self):
        """
        One writable copy and replicas: no conflict; unlisted datasets are
        not looked at.
        """
        deployment = desired(want(D0, N0))
        nodes = states(node(N0, copy(D0, N0, writable=True), copy(D1, N0, writable=True)),
                       node(N1, copy(D0, N0), copy(D1, N1, writable=True)))
        self.assertEqual(find_conflicts(deployment, nodes), [])

    def test_active(self):
        """
        Two writable copies: the report names both nodes and the one kept,
        and says the others become read-only; the fix says to wait and to
        check the deployment files.
        """
        deployment = desired(want(D0, N1))
        nodes = states(node(N0, copy(D0, N0, writable=True)),
                       node(N1, copy(D0, N1, writable=True)))
        [conflict] = find_conflicts(deployment, nodes)
        self.assertEqual((conflict.active, conflict.keeper, list(conflict.writable),
                          list(conflict.demoted)), (True, N1, [N0, N1], []))
        self.assertEqual(conflict.describe(), (
            "split brain: dataset %s is writable on nodes %s, %s, with histories that cannot "
            "be merged automatically. The copy on node %s is kept (the desired primary); "
            "node %s makes its copy read-only, keeping its data." % (D0, N0, N1, N1, N0)))
        self.assertIn("deployment file names the same primary", conflict.fix())

    def test_kept_elsewhere(self):
        """
        When the primary has no writable copy, the report says why another
        copy is kept.
        """
        deployment = desired(want(D0, N2))
        nodes = states(node(N0, copy(D0, N0, writable=True)),
                       node(N1, copy(D0, N1, writable=True)))
        [conflict] = find_conflicts(deployment, nodes)
        self.assertIn("The copy on node %s is kept (the desired primary %s has no writable "
                      "copy: highest generation, then node uuid)" % (N1, N2),
                      conflict.describe())

    def test_demoted(self):
        """
        After the demotion: the conflict copy's node, where it is mounted,
        the node with the writable copy, and the fix: copy what you need,
        then ``flocker-zfs destroy`` on that node.
        """
        deployment = desired(want(D0, N1))
        nodes = states(node(N0, conflicted(D0, N0).set(mountpoint="/flocker/" + D0)),
                       node(N1, copy(D0, N1, writable=True)))
        [conflict] = find_conflicts(deployment, nodes)
        self.assertEqual((conflict.active, conflict.keeper, list(conflict.demoted)),
                         (False, N1, [(N0, "/flocker/" + D0)]))
        self.assertEqual(conflict.describe(), (
            "dataset %s: the copy on node %s was made read-only because another node had its "
            "own writable copy (a conflict copy). It keeps the writes made to it, which node "
            "%s's writable copy does not have, and it is never sent to or deleted "
            "automatically." % (D0, N0, N1)))
        self.assertEqual(conflict.fix(), (
            "Look at the conflict copy (on node %s, mounted at /flocker/%s) and copy what you "
            "need into the writable copy on node %s; then run `flocker-zfs destroy %s` on "
            "that node (add --force if it refuses because of snapshots other tools took). "
            "The agent then replicates the writable copy there if the deployment wants a "
            "replica." % (N0, D0, N1, D0)))

    def test_demoted_and_active(self):
        """
        A conflict copy left from before while two copies are writable
        again: both parts are reported, in dataset id order.
        """
        deployment = desired(want(D0, N0), want(D1, N0))
        nodes = states(node(N0, copy(D0, N0, writable=True), copy(D1, N0, writable=True)),
                       node(N1, copy(D0, N1, writable=True)), node(N2, conflicted(D0, N2)))
        [conflict] = find_conflicts(deployment, nodes)
        self.assertEqual((conflict.dataset_id, conflict.active, list(conflict.demoted)),
                         (D0, True, [(N2, None)]))
        text = conflict.describe()
        self.assertIn("split brain", text)
        self.assertIn("the copy on node %s was made read-only" % (N2,), text)
        self.assertIn("into the writable copy;", conflict.fix())
