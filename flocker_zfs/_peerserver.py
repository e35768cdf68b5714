# test-case-name: flocker_zfs.test.test_peerserver
"""
The server side of the peer protocol: what ``flocker-zfs peer-serve`` does
for one request from another node (:mod:`flocker_zfs._protocol`).

The client is treated as hostile or buggy.  :func:`parse_request` checks the
verb and every argument before anything runs; a dataset is named by its id
only and the server maps it to ``<pool>/<id>`` itself; the server chooses
every ``zfs receive`` flag (``-u``, ``-s`` and ``-o`` only: never ``-F``,
``-d``, ``-e``, ``-R``); and nothing is changed in a dataset that is not ours
(``flocker:managed=yes`` with a matching ``flocker:dataset_id``, both set
locally) except as described under "adoption" below.

``receive`` keeps the copy a read-only replica: ``readonly=on`` set locally,
mounted at ``<mount_root>/<id>``, labelled with the sender's owner and
generation (never a lower generation than the copy knows: a stale owner's
push is refused), older replication snapshots pruned.  It refuses a copy
that is writable or recorded as owned by this node, one with a handoff
marker, a base that is not the copy's newest snapshot, and partial resume
state unless the request resumes it.  A snapshot already there (a retry after
a lost reply) is answered without receiving again.

``acquire`` makes this node the writable owner when its newest snapshot is
the handoff snapshot's GUID, there is no partial state and the generation is
newer than the copy's.  It records ``flocker:owner=<self>``, then
``flocker:generation``, then ``readonly=off``, one ``zfs set`` each.  A crash
after the owner leaves the copy read-only, claimed at the old generation; a
crash after the generation leaves it read-only at the new one.  Neither is
writable (at most one writable copy), and the same ``acquire``, repeated by
the handing-off node's recovery, completes either; once complete, repeating
it is a no-op success.  (Generation first would leave "owner A at g+1" here,
which a repeated acquire at g+1 would have to refuse as stale.)

Labels of a new replica, and the crash window on zfs-fuse
-----------------------------------------------------------

OpenZFS labels a new replica atomically: ``zfs receive -u -s -o
flocker:managed=yes -o flocker:dataset_id=ID -o flocker:owner=.. -o
flocker:generation=.. -o readonly=on -o mountpoint=..``.  zfs-fuse has no
``receive -o``, so the labels follow the receive, one ``zfs set`` each, in
this order: ``readonly=on`` (first: the pool root may not be read-only, so
the copy could be writable until then), ``mountpoint``, ``flocker:owner``,
``flocker:generation``, ``flocker:dataset_id`` and last ``flocker:managed``:
the copy counts as ours only once everything else is in place.  Then it is
mounted.

A crash between the receive and the last ``set`` leaves ``<pool>/<id>`` with
one snapshot and no ``flocker:managed``: by the namespace rule not ours.
Refusing it for ever would stop replication to this node until an operator
steps in, so it is *adopted* under a narrow rule:

- it is a filesystem named ``<pool>/<uuid>``, not a clone, without child
  datasets and without resume state;
- ``flocker:managed`` is not set locally and ``flocker:dataset_id`` is unset
  or equal to the id (the only states the label order above can leave);
- it holds exactly one snapshot, and the request proves it holds that very
  snapshot: a full ``receive`` of the same snapshot name and GUID, or an
  incremental whose base is its GUID.  GUIDs are random 64-bit numbers
  given to a snapshot when it is taken, so a match means the copy was
  received from the client's own snapshot of this dataset.

Adoption only adds labels and mounts; nothing is destroyed or rolled back,
so even a wrongly adopted copy loses nothing.  ``state`` reports such a copy
as it is (``"adoptable": true``) so the client picks its snapshot as the
incremental base by GUID.  Anything else under our naming without labels,
an interrupted receive's partial state included, is refused as
:class:`NotManaged` with the manual fix in the message.

Partial state (OpenZFS ``receive -s``): the new dataset an interrupted full
receive leaves carries our labels when ``-o`` applied them; when it does not
(or in the fake), the server labels it right after the failure, holding the
lock, having checked that the name was free.  ``state`` reports a partial
copy as ``exists: false`` with its ``resume_token``.

Readers of a mounted replica on zfs-fuse
----------------------------------------

zfs-fuse receives into a mounted filesystem without invalidating the
kernel's FUSE caches, so readers could go on seeing the replica as it was
(:func:`~flocker_zfs._commands.receive_leaves_stale_lookups`): a name they
looked up before it arrived stays missing, and so does a file replaced by a
rename, and a file changed in place without changing size reads its old
bytes, for up to zfs-fuse's cache timeouts (an hour as Debian configures it).
So after a receive into a mounted copy (and before ``acquire`` makes one
writable) the server unmounts and mounts it again, holding the lock, which
drops those caches.  A process with a file or its working directory in the
replica makes the unmount fail: the copy is then left mounted as it was,
never forced, the receive still succeeds, ``remount_skipped`` is logged, and
the reply says ``"stale": true``; the next receive tries again.  A crash
between the unmount and the mount leaves the copy unmounted with its data
intact, and the next receive or acquire mounts it.
"""

import shlex

from eliot import Message, start_action, write_failure
from eliot.twisted import DeferredContext
from twisted.internet.defer import fail, maybeDeferred

from . import _commands as commands
from ._actions import PEER_SERVE
from ._protocol import (
    ABORT_RECEIVE, ACQUIRE, DATASETS, FULL, HELLO, MAX_RESPONSE, PROTOCOL_VERSION, RECEIVE,
    RESUME, STATE, VERBS, ProtocolError, ResponseTooLarge, dataset_state, encode_error,
    encode_ok, limit_text, parse_request, request)
from ._backend import _deferred
from ._peercopy import (  # noqa: F401 (BytesReceiveStream re-exported)
    ABSENT, ADOPTABLE, FOREIGN, OURS, BytesReceiveStream, check_receive, described, inspect,
    mount, prune, receive_argv, refresh)
from .errors import (  # noqa: F401 (the server's refusals, re-exported)
    RECEIVE_ERRORS, BaseMismatch, DatasetBusy, DatasetExists, DatasetNotFound,
    DestinationExists, FlockerZFSError, HandoffInProgress, LocallyOwned, NoResumeState,
    PeerServeFailed, ResumeNotSupported, ResumeStateExists, SnapshotMismatch,
    StaleGeneration, UnexpectedOutput, ZFSError)


def _parsed(verb, *args):
    """
    :return: ``args`` validated and converted as the request would be (a
        direct caller is checked like a peer).
    :raises ProtocolError: a bad argument.
    """
    return parse_request(shlex.join(request(verb, *args)))[1]


def _shown(text):
    shown = repr(text)
    return shown if len(shown) <= 200 else shown[:197] + "..."


#: ``receive`` called without a maximum size (an older client).
_UNKNOWN = object()


class PeerServer(object):
    """
    Answers peer requests for the datasets of one local pool.

    :param backend: this node's :class:`~flocker_zfs.ZFSBackend`; its
        start-up checks, listings, per-dataset locks and runner are used, so
        a request never interleaves with a local operation on the same
        dataset in this process.
    """

    def __init__(self, backend):
        self._backend = backend

    @property
    def _runner(self):
        return self._backend._runner

    @property
    def node_uuid(self):
        return self._backend.node_uuid

    # -- the request ---------------------------------------------------------

    def handle(self, text, stream=None, ssh_connection=None):
        """
        Answer one request string (``SSH_ORIGINAL_COMMAND``), as one eliot
        action (``flocker_zfs:peer:serve``).

        :param stream: the :class:`~flocker_zfs.interfaces.IReceiveStream`
            of a ``receive`` request; other verbs ignore it.
        :param ssh_connection: ``SSH_CONNECTION``, logged.
        :return: ``Deferred`` firing with ``(exit status, stdout bytes)``:
            ``0`` and an ``ok`` response, or ``1`` and an error response
            (a generic one for an unexpected exception; never a traceback).
        """
        try:
            verb, args = parse_request(text)
            rejected = None
        except ProtocolError as error:
            verb, args, rejected = None, [], error
        fields = {"verb": verb, "args": [str(arg) for arg in args]}
        if ssh_connection is not None:
            fields["ssh_connection"] = ssh_connection
        if rejected is not None:
            fields["request"] = _shown(text)
        with start_action(action_type=PEER_SERVE, **fields).context() as action:
            if rejected is not None:
                d = fail(rejected)
            else:
                d = maybeDeferred(self._dispatch, verb, args, stream)
            ctx = DeferredContext(d)
            ctx.addCallback(_encoded, verb)
            ctx.addCallback(lambda response: (action.add_success_fields(status=0),
                                              response)[1])
            d = ctx.addActionFinish()
        return d.addCallbacks(lambda response: (0, response), _failed)

    def _dispatch(self, verb, args, stream):
        if verb == HELLO:
            return self.hello()
        if verb == STATE:
            return self.state(*args)
        if verb == RECEIVE:
            return self.receive(*args, stream=stream)
        if verb == ACQUIRE:
            return self.acquire(*args)
        if verb == DATASETS:
            return self.datasets()
        return self.abort_receive(*args)

    # -- verbs -------------------------------------------------------------------

    @_deferred
    async def hello(self):
        """
        :return: ``Deferred`` firing with this node's uuid, pool, protocol
            version, the verbs it answers, ZFS implementation and capabilities.
        """
        caps = await self._backend.start()
        return {
            "protocol": PROTOCOL_VERSION,
            "verbs": list(VERBS),
            "node_uuid": self.node_uuid,
            "pool": self._backend.pool,
            "implementation": caps.implementation,
            "version": caps.version,
            "capabilities": {key: value for key, value in caps.serialize().items()
                             if isinstance(value, bool)},
        }

    @_deferred
    async def state(self, dataset_id):
        """
        What this node has of ``dataset_id``, from one listing.

        :return: ``Deferred`` firing with
            :func:`~flocker_zfs._protocol.dataset_state` fields: ``exists``
            false when absent or only partial resume state (its
            ``resume_token`` given); ``adoptable`` true for an interrupted
            labelling (module docstring).
        :raises NotManaged: something that is not ours has the name.
        """
        dataset_id, = _parsed(STATE, dataset_id)
        await self._backend.start()
        copy = await inspect(self._backend, dataset_id)
        if copy.kind == ABSENT:
            return dataset_state(None)
        if copy.kind == FOREIGN:
            raise copy.refusal()
        if copy.kind == ADOPTABLE:
            return dict(dataset_state(copy.dataset), adoptable=True)
        if copy.partial():
            return dataset_state(None, copy.dataset.resume_token)
        return dataset_state(copy.dataset, copy.dataset.resume_token)

    @_deferred
    async def datasets(self):
        """
        The state of every dataset this node manages, from one discovery
        (the constant-process listing) and one in-use scan: what the
        reference agent asks each other node on every iteration.

        :return: ``Deferred`` firing with ``{"node_state": ...}``, the
            deployer's :func:`~flocker_zfs._deployer.node_state_to_json`.
        """
        # The deployer builds on this layer (its state changes drive the
        # replicator, which speaks this protocol): imported when used.
        from ._deployer import discover_state, node_state_to_json
        _parsed(DATASETS)
        await self._backend.start()
        state = await discover_state(self._backend)
        return {"node_state": node_state_to_json(state)}

    @_deferred
    async def receive(self, dataset_id, base, snapshot, guid, owner, generation,
                      maximum_size=_UNKNOWN, stream=None):
        """
        Receive ``stream`` (snapshot ``snapshot`` with ``guid``) into this
        node's read-only replica of ``dataset_id``, then label, mount and
        prune it (module docstring).

        :param base: ``"full"``, ``"resume"`` or the incremental base's guid
            (``int``), which must be the replica's newest snapshot.
        :param owner: the owner's node uuid at ``generation`` (``int``).
        :param maximum_size: the owner's maximum size (bytes or ``None``),
            recorded as ``flocker:maximum_size``; left as it is when a client
            does not send it.
        :param stream: the :class:`~flocker_zfs.interfaces.IReceiveStream`.
        :return: ``Deferred`` firing with ``{"snapshot": {"name", "guid",
            "createtxg"}, "received": bool, "mounted": bool, "stale": bool,
            "pruned": [..]}``; ``received`` is false when the snapshot was
            already here; ``stale`` true when readers may still see the copy
            as it was before (zfs-fuse, a process kept it busy).
        :raises NotManaged, DestinationExists, DatasetNotFound, LocallyOwned,
            HandoffInProgress, StaleGeneration, ResumeStateExists,
            NoResumeState, BaseMismatch: refused before anything changed.
        :raises DestinationModified, StreamIncomplete, ZFSError: ``zfs
            receive`` failed; the replica kept its last complete snapshot.
        :raises SnapshotMismatch: the received snapshot is not ``guid``.
        """
        given = () if maximum_size is _UNKNOWN else (commands.size_value(maximum_size),)
        parsed = _parsed(RECEIVE, dataset_id, base, snapshot, guid, owner, generation, *given)
        dataset_id, base, snapshot, guid, owner, generation = parsed[:6]
        maximum_size = parsed[6] if given else _UNKNOWN
        if stream is None:
            raise ProtocolError("receive needs the zfs send stream on stdin")
        if owner == self.node_uuid:
            raise ProtocolError("a receive cannot record this node (%s) as the owner; "
                                "ownership moves only by acquire" % (owner,))
        caps = await self._backend.start()
        if base == RESUME and not caps.resume_tokens:
            raise ResumeNotSupported("%s has no resumable receives" % (caps.implementation,))
        async with self._backend.locked(dataset_id):
            copy = await inspect(self._backend, dataset_id)
            received = check_receive(copy, self.node_uuid, base, snapshot, guid, owner, generation)
            if received:
                name = copy.name
                labels = ()
                if base == FULL and caps.receive_properties:
                    labels = self._labels(dataset_id, owner, generation)
                argv = receive_argv(name, caps.resume_tokens, labels)
                try:
                    await stream.receive(argv, RECEIVE_ERRORS)
                except ZFSError:
                    if base == FULL and caps.resume_tokens:
                        await self._claim_partial(dataset_id)
                    raise
            # The name was free, ours or adoptable when checked, under the
            # lock: what is there now is ours whatever labels it lost.
            response = await self._settle(dataset_id, guid, owner, generation, maximum_size)
            response["received"] = received
            return response

    @_deferred
    async def acquire(self, dataset_id, generation, guid, from_node):
        """
        Become the dataset's writable owner at ``generation``, if this
        node's copy is exactly the handoff snapshot ``guid``.  ``owner`` is
        recorded before ``generation``, and writes are enabled last.
        Repeating a completed acquire is a no-op success.

        :param from_node: the node handing off (logged).
        :return: ``Deferred`` firing with ``{"owner", "generation",
            "already", "mounted"}``.
        :raises StaleGeneration: ``generation`` is not newer than this copy's.
        :raises SnapshotMismatch: the newest snapshot is not ``guid``.
        :raises ResumeStateExists, HandoffInProgress, LocallyOwned,
            NotManaged, DatasetNotFound: refused; nothing changed.
        """
        dataset_id, generation, guid, from_node = _parsed(
            ACQUIRE, dataset_id, generation, guid, from_node)
        if from_node == self.node_uuid:
            raise ProtocolError("a node cannot hand a dataset off to itself")
        await self._backend.start()
        me = self.node_uuid
        async with self._backend.locked(dataset_id):
            copy = await inspect(self._backend, dataset_id)
            dataset = self._ours(copy)
            if (dataset.owner == me and dataset.generation == generation
                    and dataset.writable):
                return {"owner": me, "generation": generation, "already": True,
                        "mounted": await mount(self._backend, copy)}
            if dataset.resume_token is not None:
                raise ResumeStateExists("dataset %s has partial state of an interrupted "
                                        "receive" % (copy.name,))
            newest = dataset.newest_snapshot()
            if newest is None or newest.guid != guid:
                raise SnapshotMismatch(
                    "dataset %s: the newest snapshot here is %s, not the handoff snapshot "
                    "(guid %d)" % (copy.name, described(newest), guid))
            if dataset.handoff is not None:
                raise HandoffInProgress("dataset %s is being handed off from this node (%s)"
                                        % (copy.name, dataset.handoff))
            resuming = dataset.owner == me and dataset.generation == generation
            if not resuming:
                if generation <= dataset.generation:
                    raise StaleGeneration(
                        "stale generation: dataset %s is at generation %d here (owner %s), "
                        "acquire asked for %d" % (copy.name, dataset.generation,
                                                  dataset.owner, generation))
                if dataset.writable:
                    raise LocallyOwned(
                        "dataset %s is writable here at generation %d; refusing to acquire "
                        "it at %d" % (copy.name, dataset.generation, generation))
                # Owner first: a crash before the generation leaves this copy
                # read-only and claimed at the old generation, which the same
                # acquire (generation still newer) completes.
                if dataset.owner != me:
                    await self._set(copy.name, commands.OWNER, me)
                await self._set(copy.name, commands.GENERATION, str(generation))
            # The owner's limit, carried by the replica as a property: applied
            # before writes are enabled.
            recorded = copy.local(commands.MAXIMUM_SIZE)
            if recorded not in (None, "none"):
                await self._set(copy.name, "refquota", recorded)
            # Applications start from what the last receive brought, even if
            # a reader kept that receive from mounting the copy again.
            await refresh(self._backend, copy)
            await self._set(copy.name, "readonly", "off")
            return {"owner": me, "generation": generation, "already": False,
                    "mounted": await mount(self._backend, copy)}

    @_deferred
    async def abort_receive(self, dataset_id):
        """
        Discard the partial state of an interrupted resumable receive
        (``zfs receive -A``); a dataset that existed only as partial state
        goes with it.  Complete snapshots are never touched.

        :return: ``Deferred`` firing with ``{"aborted": true}``.
        :raises ResumeNotSupported: zfs-fuse.
        :raises NoResumeState: nothing to abort.
        :raises NotManaged: the dataset is not ours.
        """
        dataset_id, = _parsed(ABORT_RECEIVE, dataset_id)
        caps = await self._backend.start()
        if not caps.resume_tokens:
            raise ResumeNotSupported("%s has no resumable receives, so nothing to abort"
                                     % (caps.implementation,))
        async with self._backend.locked(dataset_id):
            copy = await inspect(self._backend, dataset_id)
            if copy.kind == FOREIGN:
                raise copy.refusal()
            if copy.kind == ABSENT or copy.dataset.resume_token is None:
                raise NoResumeState("dataset %s has no interrupted receive to abort"
                                    % (copy.name,))
            await self._runner.run(["zfs", "receive",
                                    "-A",  # discard the partial state only
                                    copy.name])
            return {"aborted": True}

    # -- helpers -----------------------------------------------------------------

    def _ours(self, copy):
        """:return: the dataset of a copy that is ours, else raise."""
        if copy.kind == ABSENT:
            raise DatasetNotFound(subject=copy.name)
        if copy.kind != OURS:
            raise copy.refusal()
        return copy.dataset

    def _labels(self, dataset_id, owner, generation):
        """The properties of a new replica, in the order they are set."""
        return (("readonly", "on"),
                ("mountpoint", self._backend.path(dataset_id).path),
                (commands.OWNER, owner),
                (commands.GENERATION, str(generation)),
                (commands.DATASET_ID, dataset_id),
                (commands.MANAGED, "yes"))

    async def _set(self, name, key, value):
        await self._runner.run(commands.set_property(name, key, value))

    async def _claim_partial(self, dataset_id):
        """
        After a failed full ``receive -s`` into a name that was free: label
        the partial dataset it left, if any, so it is recognisably ours.
        """
        try:
            copy = await inspect(self._backend, dataset_id)
            if copy.kind == FOREIGN and copy.clean and copy.partial():
                await self._set(copy.name, commands.DATASET_ID, dataset_id)
                await self._set(copy.name, commands.MANAGED, "yes")
        except FlockerZFSError as error:
            Message.log(message_type="flocker_zfs:peer:claim_failed",
                        dataset_id=dataset_id, reason=str(error))

    async def _settle(self, dataset_id, guid, owner, generation, maximum_size=None):
        """
        After a receive (or for a snapshot already here): check the newest
        snapshot is ``guid``, then make the copy a labelled, read-only,
        mounted replica and prune its older replication snapshots.  The
        caller has just checked, holding the lock, that the copy is ours or
        adoptable (or the name was free), so a copy without our labels (a
        resumed or incremental receive into an adoptable one) is labelled.
        """
        copy = await inspect(self._backend, dataset_id)
        if copy.kind == ABSENT:
            raise DatasetNotFound(subject=copy.name)
        if copy.kind == FOREIGN and not (copy.clean and copy.dataset.snapshots):
            raise copy.refusal()
        dataset = copy.dataset
        newest = dataset.newest_snapshot()
        verified = newest is not None and newest.guid == guid
        readonly_source = copy.props.get("readonly", ("-", "-"))[1]
        wanted = []
        if dataset.writable or readonly_source not in ("local", "temporary"):
            wanted.append(("readonly", "on"))
        for key, value in self._labels(dataset_id, owner, generation)[1:]:
            if key in (commands.OWNER, commands.GENERATION) and not (
                    verified and generation >= dataset.generation):
                continue  # never record an unverified or lower claim
            if copy.local(key) != value:
                wanted.append((key, value))
        if verified and maximum_size is not _UNKNOWN:
            value = commands.size_value(maximum_size)
            if (copy.local(commands.MAXIMUM_SIZE) or "none") != value:
                wanted.append((commands.MAXIMUM_SIZE, value))
        for key, value in wanted:
            await self._set(copy.name, key, value)
        if not verified:
            raise SnapshotMismatch(
                "dataset %s: after receiving, the newest snapshot here is %s, not the "
                "stream's snapshot (guid %d)" % (copy.name, described(newest), guid))
        stale = await refresh(self._backend, copy)
        mounted = await mount(self._backend, copy)
        pruned = await prune(self._backend, copy)
        return {"snapshot": {"name": newest.name, "guid": str(newest.guid),
                             "createtxg": newest.createtxg},
                "mounted": mounted, "stale": stale, "pruned": pruned}


def _encoded(response, verb):
    """
    :return: the bytes of the ``ok`` response.
    :raises ResponseTooLarge: longer than a client reads: refused here, with
        a message saying why, instead of being cut off by the client.
    """
    encoded = encode_ok(**response)
    if len(encoded) > MAX_RESPONSE:
        raise ResponseTooLarge(
            "the %s reply would be %d bytes, more than the peer protocol's limit of %s"
            % (verb, len(encoded), limit_text(MAX_RESPONSE)))
    return encoded


def _failed(failure):
    """
    :return: ``(1, error response)``; an unexpected exception is logged
        with its traceback and answered generically.
    """
    if failure.check(FlockerZFSError):
        return 1, encode_error(failure.value)
    write_failure(failure)
    return 1, encode_error(PeerServeFailed(
        "internal error in flocker-zfs peer-serve (%s)" % (failure.type.__name__,)))


__all__ = ["PeerServer", "BytesReceiveStream", "receive_argv", "LocallyOwned",
           "HandoffInProgress", "StaleGeneration", "SnapshotMismatch", "ResumeStateExists",
           "NoResumeState", "ResumeNotSupported", "PeerServeFailed"]
