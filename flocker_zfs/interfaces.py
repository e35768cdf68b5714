# test-case-name: flocker_zfs.test.test_backend_fake
"""
The interfaces of flocker-zfs.

:class:`IRunner` is the seam between pure command building and the processes
that run them: the real :class:`flocker_zfs.ProcessRunner` and the fake
:class:`flocker_zfs.testing.FakeZFS` both provide it.
:class:`IStorageBackend` is what a dataset agent uses.
"""

from zope.interface import Attribute, Interface


class IRunner(Interface):
    """
    Runs one ``zfs``/``zpool`` command.
    """

    def run(argv, errors=(), timeout=None):
        """
        Run a command to completion.

        :param argv: the command and its arguments (``str``), ``argv[0]``
            being ``"zfs"`` or ``"zpool"``.
        :param errors: ``(error type, compiled bytes pattern)`` pairs checked
            against stderr before the common ones when the command fails.
        :param timeout: seconds before the command is killed, or ``None`` for
            the runner's default.
        :return: ``Deferred`` firing with the command's stdout (``bytes``) on
            exit status 0, or failing with a
            :class:`flocker_zfs.errors.ZFSError` (``ZFSNotInstalled``,
            ``ZFSNotRunning``, ``CommandTimedOut``, the leaf matching stderr,
            or ``CommandFailed``).  Cancelling it kills the process.
        """


class IStorageBackend(Interface):
    """
    The datasets of one node's local ZFS pool.

    Every method returns a ``Deferred`` (none blocks); bad input fails it
    with an :class:`flocker_zfs.errors.InvalidName` before any command runs.
    Only datasets this library manages (``flocker:managed=yes`` with a
    matching ``flocker:dataset_id``) are ever changed.
    """

    pool = Attribute("The name of the pool (``str``).")
    node_uuid = Attribute("This node's identity (``str``, a UUID).")
    mount_root = Attribute("``FilePath`` under which datasets are mounted.")

    def start():
        """
        Check that ZFS works, that the pool exists and that the mount root is
        usable, and detect the ZFS implementation's capabilities.  Idempotent;
        every other method waits for it.

        :return: ``Deferred`` firing with a
            :class:`flocker_zfs.model.Capabilities`.
        :raises ZFSNotInstalled: ``zfs`` cannot be run.
        :raises ZFSNotRunning: the ZFS daemon is not running.
        :raises PoolNotFound: the pool does not exist.
        :raises MountRootError: the mount root cannot be created or written.
        """

    def discover():
        """
        Report the managed datasets of the pool, with a constant number of
        commands whatever their number.

        :return: ``Deferred`` firing with a :class:`flocker_zfs.model.PoolState`.
            A discovery that could not complete fails; it never reports an
            empty pool instead.
        """

    def get(dataset_id):
        """
        :return: ``Deferred`` firing with the
            :class:`flocker_zfs.model.Dataset` for ``dataset_id``.
        :raises DatasetNotFound: no managed dataset has that id.
        """

    def create(dataset_id, maximum_size=None):
        """
        Create an empty dataset owned (and writable) by this node, mounted at
        ``path(dataset_id)``.

        :param str dataset_id: a lowercase UUID.
        :param maximum_size: bytes (``int`` > 0), or ``None`` for no limit.
        :return: ``Deferred`` firing with the new
            :class:`flocker_zfs.model.Dataset`.
        :raises DatasetExists: a dataset with that id already exists.
        :raises NotManaged: the name is taken by a dataset we do not manage.
        """

    def destroy(dataset_id):
        """
        Destroy a managed dataset and its snapshots.

        :return: ``Deferred`` firing with ``None``.
        :raises DatasetNotFound: no managed dataset has that id.
        :raises NotManaged: the dataset exists but is not ours; untouched.
        :raises DatasetBusy: it is in use; nothing was destroyed.
        :raises HasDependentClones: a clone depends on one of its snapshots.
        """

    def resize(dataset_id, maximum_size):
        """
        Change the maximum size (``refquota``) of an owned dataset.

        :param maximum_size: bytes, or ``None`` to remove the limit.
        :return: ``Deferred`` firing with the updated
            :class:`flocker_zfs.model.Dataset`.
        :raises QuotaTooSmall: below what the dataset already uses; unchanged.
        :raises DatasetNotFound: no managed dataset has that id.
        """

    def snapshot(dataset_id, name=None):
        """
        Take a snapshot of a managed dataset.

        :param name: the snapshot's short name, or ``None`` for a generated
            ``flocker-<UTC time>-<random>`` name.
        :return: ``Deferred`` firing with the new
            :class:`flocker_zfs.model.Snapshot`.
        :raises DatasetExists: a snapshot of that name exists.
        :raises DatasetNotFound: no managed dataset has that id.
        """

    def clone(dataset_id, snapshot_name, new_dataset_id, maximum_size=None):
        """
        Create a new writable dataset owned by this node from a snapshot.

        :return: ``Deferred`` firing with the new
            :class:`flocker_zfs.model.Dataset`.
        :raises DatasetNotFound: the dataset or snapshot does not exist.
        :raises DatasetExists: ``new_dataset_id`` is taken.
        """

    def path(dataset_id):
        """
        :return: the ``FilePath`` where ``dataset_id`` is (or would be)
            mounted.  Pure: runs nothing.
        :raises InvalidDatasetId: ``dataset_id`` is not a lowercase UUID.
        """


class IPeer(Interface):
    """
    A connection to one peer node's ``flocker-zfs peer-serve`` endpoint (see
    :mod:`flocker_zfs._protocol`).  Real: over SSH; fake: in memory.
    """

    address = Attribute("The peer's address (``str``), for messages.")

    def call(verb, *args):
        """
        Send one request that carries no stream.

        :return: ``Deferred`` firing with the response ``dict`` (``ok`` true),
            or failing with ``RemoteError`` (the peer refused, saying why), a
            transport error (``PeerUnreachable``, ``HostKeyMismatch``,
            ``PeerPermissionDenied``, ``TransportError``) or ``ProtocolError``.
        """

    def stream(send_argv, verb, *args, progress=None):
        """
        Run the local ``send_argv`` (a ``zfs send``) and pipe its stdout,
        process to process, into the request ``verb`` on the peer.

        :param progress: ``callable(bytes_so_far)`` called now and then while
            the stream flows, or ``None``.
        :return: ``Deferred`` firing with ``(response dict, bytes sent)``;
            failing with ``TransferFailed`` that names the side (``sender``,
            ``transport`` or ``receiver``) and carries the other errors, or
            with ``CancelledError`` (both processes are then gone).
        """


class IReceiveStream(Interface):
    """
    Server side: the stream a ``receive`` request brought (the ssh
    session's stdin, or bytes in the fake).
    """

    def receive(argv, errors=()):
        """
        Run ``argv`` (a ``zfs receive``) with the incoming stream as its
        stdin, process to process.  A stream can be received once.

        :param errors: ``(error type, compiled bytes pattern)`` pairs checked
            against stderr before the common ones, as for
            :meth:`IRunner.run`; the peer server passes
            :data:`~flocker_zfs.errors.RECEIVE_ERRORS`.
        :return: ``Deferred`` firing with its stdout, or failing with the
            typed :class:`~flocker_zfs.errors.ZFSError` for its stderr.
        """
