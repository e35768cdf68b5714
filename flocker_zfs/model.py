# test-case-name: flocker_zfs.test.test_model
"""
Immutable records describing datasets, snapshots, pools and ZFS capabilities.

Pure: nothing here runs a command.  ``None`` in a field means "unknown" or
"none set", never "empty".
"""

from pyrsistent import PClass, field, pmap_field, pvector_field

from .names import is_dataset_id


def _check_dataset_id(value):
    return (is_dataset_id(value), "dataset_id must be a lowercase UUID: %r" % (value,))


def _non_negative(value):
    return (value is None or value >= 0, "must be >= 0: %r" % (value,))


def _positive_or_none(value):
    return (value is None or value > 0, "must be > 0 or None: %r" % (value,))


class Snapshot(PClass):
    """
    One snapshot of a dataset.

    :ivar str name: the part after ``@``.
    :ivar int guid: ZFS's globally unique id of the snapshot; the same on
        every node that received it, so replication bases are matched by it.
    :ivar int createtxg: the transaction group it was taken in (orders them).
    :ivar bool managed: taken by flocker-zfs (``flocker:managed=yes`` set on
        the snapshot itself, or a generated ``flocker-`` name); only these
        may ever be pruned.
    """

    name = field(type=str, mandatory=True)
    guid = field(type=int, mandatory=True)
    createtxg = field(type=int, mandatory=True)
    managed = field(type=bool, initial=False)


class Dataset(PClass):
    """
    Discovered state of one managed dataset in the local pool.

    :ivar str owner: node uuid of the owner, or ``None`` if not recorded.
    :ivar int generation: ownership generation (bumped at each handoff).
    :ivar bool writable: ``readonly=off``: this node's copy accepts writes.
    :ivar maximum_size: ``refquota`` in bytes, ``None`` for no limit.
    :ivar int used: bytes used by the dataset and its snapshots.
    :ivar int referenced: bytes referenced by the live filesystem.
    :ivar mountpoint: the ``mountpoint`` property (``str``) or ``None``.
    :ivar bool mounted: whether it is mounted now.
    :ivar origin: ``dataset_id@snapshot`` it was cloned from, or ``None``.
    :ivar handoff: the ``flocker:handoff`` marker (``"<node uuid>:<generation>"``)
        while a handoff from this node is in progress, else ``None``.
    :ivar peer_bases: ``node uuid -> guid`` of the newest snapshot known to
        be on that peer (``flocker:peer:<uuid>`` properties): replication
        bases that retention must keep.
    :ivar resume_token: the ``receive_resume_token`` left by an interrupted
        resumable receive (OpenZFS), else ``None``.
    :ivar snapshots: oldest first.
    """

    dataset_id = field(type=str, mandatory=True, invariant=_check_dataset_id)
    owner = field(type=(str, type(None)), initial=None)
    generation = field(type=int, initial=0, invariant=_non_negative)
    writable = field(type=bool, initial=False)
    maximum_size = field(type=(int, type(None)), initial=None,
                         invariant=_positive_or_none)
    used = field(type=int, initial=0, invariant=_non_negative)
    referenced = field(type=int, initial=0, invariant=_non_negative)
    mountpoint = field(type=(str, type(None)), initial=None)
    mounted = field(type=bool, initial=False)
    origin = field(type=(str, type(None)), initial=None)
    handoff = field(type=(str, type(None)), initial=None)
    peer_bases = pmap_field(str, int)
    resume_token = field(type=(str, type(None)), initial=None)
    snapshots = pvector_field(Snapshot)

    def owned_by(self, node_uuid):
        """
        :return: ``True`` if ``node_uuid`` is the recorded owner.
        """
        return self.owner == node_uuid

    def is_replica(self, node_uuid):
        """
        :return: ``True`` if this copy is a read-only replica on ``node_uuid``.
        """
        return not (self.owned_by(node_uuid) and self.writable)

    def newest_snapshot(self):
        """
        :return: the newest :class:`Snapshot`, or ``None``.
        """
        return self.snapshots[-1] if self.snapshots else None


class PoolState(PClass):
    """
    Discovered state of the managed datasets in one pool.

    :ivar pool: the pool's name.
    :ivar datasets: ``dataset_id -> Dataset``.
    :ivar ignored: names of datasets in the pool that look like ours but are
        not managed (they are never touched).
    """

    pool = field(type=str, mandatory=True)
    datasets = pmap_field(str, Dataset)
    ignored = pvector_field(str)

    def __invariant__(self):
        bad = [key for key, dataset in self.datasets.items()
               if key != dataset.dataset_id]
        return (not bad, "keys must equal dataset_id: %r" % (bad,))

    def with_dataset(self, dataset):
        """
        :return: a new state with ``dataset`` added or replaced.
        """
        return self.transform(["datasets", dataset.dataset_id], dataset)


ZFS_FUSE = "zfs-fuse"
OPENZFS = "openzfs"


class Capabilities(PClass):
    """
    What the local ZFS implementation can do, detected once at start-up.

    :ivar str implementation: :data:`ZFS_FUSE` or :data:`OPENZFS`.
    :ivar str version: the userland version when it says (``"2.1.11-1"``),
        else ``""``.
    :ivar bool exact_list: ``zfs list -p`` prints exact numbers.
    :ivar bool get_type_filter: ``zfs get -t`` exists.
    :ivar bool multi_set: ``zfs set a=1 b=2 name`` sets both at once.
    :ivar bool receive_unmounted: ``zfs receive -u`` exists.
    :ivar bool receive_properties: ``zfs receive -o prop=value`` exists.
    :ivar bool resume_tokens: ``zfs receive -s`` / ``zfs send -t`` exist.
    :ivar bool bookmarks: bookmarks can be made in this pool.
    :ivar bool holds: ``zfs hold``/``release`` work.
    :ivar bool hold_listing: ``zfs holds -H`` works.
    :ivar bool send_estimate: ``zfs send -nP`` prints a size estimate.
    :ivar bool send_compressed: ``zfs send -c -L -e`` exist.
    :ivar bool raw_send: ``zfs send -w`` exists.
    :ivar bool mount_reports_rw: a *mounted* dataset whose ``readonly`` is
        ``on`` is reported as ``off`` with source ``temporary`` (zfs-fuse
        mounts everything ``rw`` and enforces read-only itself: writes still
        fail with EROFS).  Elsewhere a temporary ``off`` really is writable.
    :ivar bool readonly_spares_open_files: ``readonly=on`` stops new opens
        for writing but files already open keep writing (zfs-fuse): only a
        remount cuts them off.
    """

    implementation = field(type=str, mandatory=True)
    version = field(type=str, initial="")
    exact_list = field(type=bool, initial=False)
    get_type_filter = field(type=bool, initial=False)
    multi_set = field(type=bool, initial=False)
    receive_unmounted = field(type=bool, initial=False)
    receive_properties = field(type=bool, initial=False)
    resume_tokens = field(type=bool, initial=False)
    bookmarks = field(type=bool, initial=False)
    holds = field(type=bool, initial=False)
    hold_listing = field(type=bool, initial=False)
    send_estimate = field(type=bool, initial=False)
    send_compressed = field(type=bool, initial=False)
    raw_send = field(type=bool, initial=False)
    mount_reports_rw = field(type=bool, initial=False)
    readonly_spares_open_files = field(type=bool, initial=False)


def zfs_fuse_capabilities():
    """
    :return: the :class:`Capabilities` of zfs-fuse 0.7 (pool version 23).
    """
    return Capabilities(implementation=ZFS_FUSE, holds=True, mount_reports_rw=True,
                        receive_unmounted=True, readonly_spares_open_files=True)


def openzfs_capabilities(version="", bookmarks=True):
    """
    :return: the :class:`Capabilities` of OpenZFS 2.x.
    """
    return Capabilities(
        implementation=OPENZFS, version=version, exact_list=True,
        get_type_filter=True, multi_set=True, receive_unmounted=True,
        receive_properties=True, resume_tokens=True, bookmarks=bookmarks,
        holds=True, hold_listing=True, send_estimate=True,
        send_compressed=True, raw_send=True)


class PushResult(PClass):
    """
    What one push did.

    :ivar snapshot: the snapshot now on the peer (name).
    :ivar base: the incremental base's name, or ``None`` for a full stream.
    :ivar int bytes: bytes streamed.
    :ivar float duration: seconds.
    """

    dataset_id = field(type=str, mandatory=True)
    peer = field(type=str, mandatory=True)
    snapshot = field(type=str, mandatory=True)
    guid = field(type=int, mandatory=True)
    base = field(type=(str, type(None)), initial=None)
    bytes = field(type=int, initial=0)
    duration = field(type=float, initial=0.0)
    resumed = field(type=bool, initial=False)


class HandoffResult(PClass):
    """
    What one handoff did.

    :ivar int generation: the new owner's generation.
    :ivar float unwritable: seconds during which no node was writable
        (from ``readonly=on`` here to the peer's acquire).
    :ivar int rounds: pre-copy rounds.
    :ivar int bytes: bytes streamed in all.
    :ivar bool already: the peer already owned it (nothing was done).
    """

    dataset_id = field(type=str, mandatory=True)
    peer = field(type=str, mandatory=True)
    generation = field(type=int, mandatory=True)
    final_snapshot = field(type=(str, type(None)), initial=None)
    unwritable = field(type=float, initial=0.0)
    rounds = field(type=int, initial=0)
    bytes = field(type=int, initial=0)
    already = field(type=bool, initial=False)
