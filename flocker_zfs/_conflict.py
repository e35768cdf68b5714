# test-case-name: flocker_zfs.test.test_conflict
"""
Split brain: a dataset writable on more than one node, and how it is settled.

Two writable copies with unrelated histories appear when two nodes each
create the dataset because their copies of the deployment file disagree
about its primary for a while (each asked the other just before the other's
create finished), or when someone sets ``readonly=off`` on a replica.
Neither copy can be pushed over the other (they share no snapshot), and
every write to either makes them diverge further.

The rule, the same on every node (pure; docs/deployer.rst, "Conflicts"):

- The *keeper* is the writable copy of the highest rank: the copy on the
  desired primary first, then the highest ownership generation, then the
  greatest node uuid.  The rank depends only on the copy and the deployment,
  not on which nodes answered, so nodes sharing a deployment file never
  pick keepers that would make every copy read-only.
- Every other node holding a writable copy *demotes* it as soon as it sees a
  writable copy ranked above its own: a snapshot named
  ``flocker-conflict-<UTC time>-<keeper>-<random>``, then ``readonly=on``.
  In use or not: an application getting ``EROFS`` is told at once, while one
  writing into a copy that can never become the dataset loses its writes
  silently.  Nothing is sent, rolled back or destroyed.
- The demoted copy is a *conflict copy* (read-only, no handoff marker, its
  newest snapshot a conflict snapshot).  It is never pushed over, handed
  off to or deleted automatically: the operator takes what they need from
  it and destroys it (:meth:`Conflict.fix`).
"""

import datetime

from pyrsistent import PClass, field, pvector_field

#: The name prefix of the snapshot that marks a demoted copy.
CONFLICT_PREFIX = "flocker-conflict-"


def conflict_snapshot_name(seconds, keeper, suffix):
    """
    :param float seconds: the time of the demotion (POSIX seconds).
    :param str keeper: the uuid of the node whose copy stays writable.
    :param str suffix: a few random characters, so two demotions in one
        second still get two names.
    :return: ``flocker-conflict-<UTC time>-<first 8 of keeper>-<suffix>``.
    """
    when = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return "%s%s-%s-%s" % (CONFLICT_PREFIX, when.strftime("%Y%m%dT%H%M%SZ"), keeper[:8],
                           suffix)


def is_conflict_copy(dataset):
    """
    :param dataset: a :class:`~flocker_zfs.model.Dataset`.
    :return: ``True`` if it is a copy made read-only to settle a split
        brain: read-only, no handoff marker, newest snapshot a conflict
        snapshot.
    """
    newest = dataset.newest_snapshot()
    return (not dataset.writable and dataset.handoff is None and newest is not None
            and newest.name.startswith(CONFLICT_PREFIX))


def writable_copies(dataset_id, nodes):
    """
    :param nodes: ``{node uuid: NodeState}``.
    :return: ``{node uuid: Dataset}`` of the nodes whose copy of
        ``dataset_id`` is writable, whoever it names as owner.
    """
    return {uuid: state.datasets[dataset_id] for uuid, state in nodes.items()
            if dataset_id in state.datasets and state.datasets[dataset_id].writable}


def rank(primary, node_uuid, dataset):
    """
    :return: the sort key of the writable copy ``dataset`` on ``node_uuid``
        when ``primary`` is the desired primary: the greatest is kept.
    """
    return (node_uuid == primary, dataset.generation, node_uuid)


def keeper(primary, writable):
    """
    :param writable: :func:`writable_copies`'s result.
    :return: the uuid of the node whose writable copy is kept, or ``None``
        when there is none.
    """
    if not writable:
        return None
    return max(writable, key=lambda uuid: rank(primary, uuid, writable[uuid]))


class Conflict(PClass):
    """
    A dataset with more than one writable copy, or with conflict copies left
    by an earlier one, as seen from one node.

    :ivar writable: the nodes with a writable copy, sorted.
    :ivar keeper: the one of them whose copy is kept, or ``None``.
    :ivar demoted: ``node uuid -> mountpoint or None`` of the conflict copies.
    """

    dataset_id = field(type=str, mandatory=True)
    primary = field(type=str, mandatory=True)
    writable = pvector_field(str)
    keeper = field(type=(str, type(None)), initial=None)
    demoted = pvector_field(tuple)

    @property
    def active(self):
        """``True`` while more than one copy is writable."""
        return len(self.writable) > 1

    def describe(self):
        """
        :return: one paragraph naming the nodes and what the agents do.
        """
        parts = []
        if self.active:
            losers = [uuid for uuid in self.writable if uuid != self.keeper]
            why = ("the desired primary" if self.keeper == self.primary else
                   "the desired primary %s has no writable copy: highest generation, then "
                   "node uuid" % (self.primary,))
            parts.append(
                "split brain: dataset %s is writable on nodes %s, with histories that cannot "
                "be merged automatically. The copy on node %s is kept (%s); %s %s its copy "
                "read-only, keeping its data"
                % (self.dataset_id, ", ".join(self.writable), self.keeper, why,
                   _nodes(losers), "makes" if len(losers) == 1 else "each make"))
        if self.demoted:
            holder = ("node %s's writable copy" % (self.keeper,)
                      if self.keeper is not None and not self.active
                      else "the writable copy")
            parts.append(
                "dataset %s: the copy on %s was made read-only because another node had its "
                "own writable copy (a conflict copy). It keeps the writes made to it, which "
                "%s does not have, and it is never sent to or deleted automatically"
                % (self.dataset_id, _nodes([uuid for uuid, _ in self.demoted]), holder))
        return ". ".join(parts) + "."

    def fix(self):
        """
        :return: what the operator does about it.
        """
        if not self.demoted:
            return ("Nothing yet: the other nodes' agents make their copies read-only when "
                    "they see node %s's copy. If they do not, check that every node's "
                    "deployment file names the same primary for %s."
                    % (self.keeper, self.dataset_id))
        where = "; ".join("on node %s%s" % (uuid, ", mounted at %s" % (path,) if path else "")
                          for uuid, path in self.demoted)
        target = ("the writable copy on node %s" % (self.keeper,)
                  if self.keeper is not None and not self.active else "the writable copy")
        return ("Look at the conflict copy (%s) and copy what you need into %s; then run "
                "`flocker-zfs destroy %s` on that node (add --force if it refuses because "
                "of snapshots other tools took). The agent then replicates the writable copy "
                "there if the deployment wants a replica." % (where, target, self.dataset_id))


def _nodes(uuids):
    return "node%s %s" % ("s" if len(uuids) > 1 else "", ", ".join(uuids))


def find_conflicts(deployment, nodes):
    """
    :param deployment: the :class:`~flocker_zfs._deployment.Deployment`.
    :param nodes: ``{node uuid: NodeState}`` of the nodes that answered.
    :return: a :class:`Conflict` for each dataset of the deployment with
        more than one writable copy or any conflict copy, in dataset id order.
    """
    found = []
    for dataset_id in sorted(deployment.datasets):
        primary = deployment.datasets[dataset_id].primary
        writable = writable_copies(dataset_id, nodes)
        demoted = [(uuid, state.datasets[dataset_id].mountpoint)
                   for uuid, state in sorted(nodes.items())
                   if dataset_id in state.datasets
                   and is_conflict_copy(state.datasets[dataset_id])]
        if len(writable) > 1 or demoted:
            found.append(Conflict(dataset_id=dataset_id, primary=primary,
                                  writable=sorted(writable), keeper=keeper(primary, writable),
                                  demoted=demoted))
    return found
