# test-case-name: flocker_zfs.test.test_agent
"""
The reference agent: a Twisted service that converges this node towards a
desired deployment file.

Each iteration, on the injected reactor:

1. read the deployment file when its content changed (an invalid file is
   logged and the last good deployment kept; without one, nothing is done);
2. discover this node's state (:func:`~flocker_zfs._deployer.discover_state`);
3. ask every *other* node of the deployment for its state (the peer
   ``datasets`` request), all at once; a node that does not answer in time,
   or answers as another node, is left out of the cluster state and the
   reason logged;
4. plan (:func:`~flocker_zfs._deployer.calculate_changes`) and start each
   planned change whose dataset has no change in flight, at most
   ``max_parallel`` at once.  The iteration does not wait for them: the next
   one is scheduled at once, and skips the datasets still busy;
5. log every dataset in conflict (:mod:`flocker_zfs._conflict`: writable on
   more than one node, or with a copy made read-only to settle that) as a
   ``flocker_zfs:agent:conflict`` message naming the nodes and the fix, on
   every iteration until the operator has settled it.

A planned create is confirmed right before it runs: the deployment file
read again must still name this node as the primary, and every other node
asked again must answer without a copy (two nodes creating one dataset make
a split brain).

Replicas follow the owner's writes: every ``replication_interval`` seconds
(counted from the start of the last successful push of a dataset by this
agent, and at once for a dataset it has not pushed since it started) the
owner's plan pushes a new snapshot to every wanted replica that answered.

The next iteration comes ``poll_interval`` seconds later, or later still
after a failed iteration or a failed change (doubling each time up to
``max_backoff``; a clean iteration resets it).

Stopping lets changes in flight finish for ``stop_grace`` seconds, then
cancels them (their processes are killed; a handoff cut anywhere is settled
by the recovery the next start plans).
"""

import os

from eliot import Message, start_action
from twisted.application.service import Service
from twisted.internet.defer import (
    CancelledError, Deferred, DeferredSemaphore, FirstError, TimeoutError, gatherResults,
    maybeDeferred, succeed)
from twisted.python.failure import Failure

from ._actions import AGENT_CLUSTER_STATE, AGENT_DEPLOYMENT, AGENT_ITERATION
from ._backend import _deferred
from ._conflict import find_conflicts
from ._deployer import (
    ClusterState, calculate_changes, discover_state, node_state_from_json, unmanaged_ids)
from ._deployment import parse_deployment
from ._yamlsource import decode_text, read_source
from ._plugin import backend_from_config
from ._protocol import DATASETS, is_unknown_verb
from ._replication import Replicator
from ._sshpeer import SSHPeer
from ._statechanges import (
    ChangeContext, InParallel, PushDataset, Sequentially, run_state_change)
from .errors import ConfigError, FlockerZFSError

#: Exponent above which the backoff is surely capped (avoids huge floats).
_MAX_DOUBLINGS = 30

#: The message logged on every iteration for each dataset in conflict.
CONFLICT_MESSAGE = "flocker_zfs:agent:conflict"

#: Largest deployment file read (it is parsed on the reactor thread; a
#: wrong path to a log or an image must not be read whole).
MAX_DEPLOYMENT_BYTES = 16 * 1024 * 1024


def _reason(error):
    """
    :return: a one-line description of ``error`` for the log.
    """
    if isinstance(error, FlockerZFSError):
        return error.summary()
    return "%s: %s" % (type(error).__name__, error)


def _dataset_of(change):
    """
    :return: the one dataset a top-level change concerns (``None`` for a
        change of no single dataset, which then runs one at a time too).
    """
    return getattr(change, "dataset_id", None)


def _pushes(change):
    """
    :return: ``True`` if ``change`` is or contains a :class:`PushDataset`.
    """
    if isinstance(change, (Sequentially, InParallel)):
        return any(_pushes(child) for child in change.changes)
    return isinstance(change, PushDataset)


def backoff_delay(poll_interval, failures, max_backoff):
    """
    The wait before the next iteration.

    :param int failures: failed iterations in a row (0 after a clean one).
    :return: ``poll_interval`` doubled ``failures`` times, at most
        ``max_backoff`` (and never less than ``poll_interval``).
    """
    delay = poll_interval * 2 ** min(failures, _MAX_DOUBLINGS)
    return max(poll_interval, min(delay, max_backoff))


def ssh_peers(reactor, ssh_config):
    """
    The ``make_peer`` of a real agent.

    :param ssh_config: the :class:`~flocker_zfs.SSHConfig` to reach peers with.
    :return: ``callable(NodeAddress) -> SSHPeer`` to the node's address and
        ssh port.
    """
    def make_peer(address):
        return SSHPeer(reactor, ssh_config, address.address, address.ssh_port)
    return make_peer


class _DeploymentFile(object):
    """
    The deployment file as last read: parsed again only when its bytes
    changed, the last good deployment kept while it is invalid.
    """

    def __init__(self, path):
        self.path = path
        self.good = None
        self.error = None
        self._seen = None

    def read(self):
        """
        Read the file (on the reactor thread: a pipe or a device at the path
        is refused, never waited on or read).

        :return: ``True`` if the content changed since the last read.
        :raises ConfigError: the new content is unreadable or invalid
            (raised once per change; :attr:`good` is kept).
        """
        try:
            content = read_source(
                self.path, MAX_DEPLOYMENT_BYTES, "deployment file",
                fix="Point the dataset section's deployment key at the deployment YAML "
                    "file (see docs/deployer.rst).",
                missing_fix="Create it (see docs/deployer.rst); the agent reads it again "
                            "on every iteration.")
        except ConfigError as error:
            content = error
        if content == self._seen or (
                isinstance(content, ConfigError) and isinstance(self._seen, ConfigError)
                and str(content) == str(self._seen)):
            return False
        self._seen = content
        try:
            if isinstance(content, ConfigError):
                raise content
            self.good = parse_deployment(decode_text(content, self.path), source=self.path)
        except ConfigError as error:
            self.error = error
            raise
        self.error = None
        return True


class AgentService(Service):
    """
    Converge this node towards the deployment file (module docstring).

    :param reactor: ``IReactorTime`` for every wait and timeout (and what
        the default replicator uses).
    :param backend: this node's started-or-not
        :class:`~flocker_zfs.ZFSBackend`; its ``node_uuid`` is this node's
        identity in the deployment.
    :param str deployment_path: the deployment YAML file.
    :param make_peer: ``callable(NodeAddress) -> IPeer`` (:func:`ssh_peers`
        for real nodes).
    :param float poll_interval: seconds between iterations.
    :param int max_parallel: changes in flight at once.
    :param replicator: default a :class:`~flocker_zfs.Replicator` of ``backend``.
    :param float max_backoff: longest wait after failures.
    :param float stop_grace: seconds :meth:`stopService` lets changes in
        flight finish before cancelling them.
    :param float query_timeout: seconds another node has to answer
        ``datasets`` before it counts as unreachable for this iteration.
    :param open_files: ``callable(path) -> Deferred`` of the pids using a
        mountpoint, for :func:`~flocker_zfs._deployer.discover_state`;
        default one ``/proc`` scan in the reactor's thread pool.
    :param replication_interval: seconds (> 0) between pushes of new data
        from an owned dataset to its wanted replicas, or ``None`` for never
        (replicas then get only snapshots taken by someone else).
    :raises ConfigError: a bad interval, bound or timeout.
    """

    name = "flocker-zfs-agent"

    def __init__(self, reactor, backend, deployment_path, make_peer, poll_interval=10.0,
                 max_parallel=4, replicator=None, max_backoff=300.0, stop_grace=30.0,
                 query_timeout=60.0, open_files=None, replication_interval=60.0):
        for key, value in (("poll_interval", poll_interval), ("max_backoff", max_backoff),
                           ("stop_grace", stop_grace), ("query_timeout", query_timeout)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ConfigError("invalid agent %s %r: must be a number of seconds >= 0"
                                  % (key, value))
        if replication_interval is not None and (
                isinstance(replication_interval, bool)
                or not isinstance(replication_interval, (int, float))
                or not replication_interval > 0):
            raise ConfigError("invalid agent replication_interval %r: must be a number of "
                              "seconds > 0, or None for never" % (replication_interval,))
        if isinstance(max_parallel, bool) or not isinstance(max_parallel, int) \
                or max_parallel < 1:
            raise ConfigError("invalid agent max_parallel %r: must be a whole number >= 1"
                              % (max_parallel,))
        self.reactor = reactor
        self.backend = backend
        self.deployment_file = _DeploymentFile(os.path.abspath(deployment_path))
        self.poll_interval = float(poll_interval)
        self.max_parallel = max_parallel
        self.max_backoff = float(max_backoff)
        self.stop_grace = float(stop_grace)
        self.query_timeout = float(query_timeout)
        self.replication_interval = (None if replication_interval is None
                                     else float(replication_interval))
        self.replicator = replicator if replicator is not None else Replicator(
            backend, reactor)
        self._make_peer = make_peer
        self._open_files = open_files
        self._peers = {}
        self._slots = DeferredSemaphore(max_parallel)
        self._in_flight = {}
        self._last_started = {}
        self._replicated = {}
        self._failures = 0
        self._change_failed = False
        self._next = None
        self._iteration = None
        self._accepting = True
        self._stop_waiters = []
        self._grace_call = None

    @property
    def node_uuid(self):
        return self.backend.node_uuid

    @property
    def deployment(self):
        """
        The last good :class:`~flocker_zfs._deployment.Deployment`, or ``None``.
        """
        return self.deployment_file.good

    def in_flight(self):
        """
        :return: the ids of the datasets with a change in flight, sorted.
        """
        return sorted(self._in_flight, key=str)

    def due(self, deployment):
        """
        :return: the ids of ``deployment``'s datasets whose replicas are due
            for new data: not pushed successfully by this agent within the
            last ``replication_interval`` seconds (none when it is ``None``).
        """
        if self.replication_interval is None:
            return frozenset()
        now = self.reactor.seconds()
        return frozenset(
            dataset_id for dataset_id in deployment.datasets
            if now - self._replicated.get(dataset_id, float("-inf"))
            >= self.replication_interval)

    def next_delay(self):
        """
        :return: seconds the next iteration waits after the current one.
        """
        return backoff_delay(self.poll_interval, self._failures, self.max_backoff)

    # -- the service ---------------------------------------------------------

    def startService(self):
        """
        Start iterating now.
        """
        Service.startService(self)
        self._accepting = True
        self._failures = 0
        self._change_failed = False
        if self._grace_call is not None and self._grace_call.active():
            # Started again while stopping: the changes still in flight may
            # finish after all (the earlier stop's Deferreds fire when they do).
            self._grace_call.cancel()
            self._grace_call = None
        self._tick()

    def stopService(self):
        """
        Stop scheduling; let the changes in flight finish for ``stop_grace``
        seconds, then cancel them.

        :return: ``Deferred`` firing once no change is in flight.
        """
        Service.stopService(self)
        self._accepting = False
        if self._next is not None and self._next.active():
            self._next.cancel()
        self._next = None
        if self._iteration is not None:
            self._iteration.cancel()
        if not self._in_flight:
            return succeed(None)
        stopped = Deferred()
        self._stop_waiters.append(stopped)
        if self._grace_call is None:
            Message.log(message_type="flocker_zfs:agent:stopping",
                        in_flight=self.in_flight(), grace=self.stop_grace)
            self._grace_call = self.reactor.callLater(self.stop_grace,
                                                      self._cancel_in_flight)
        return stopped

    def _cancel_in_flight(self):
        self._grace_call = None
        Message.log(message_type="flocker_zfs:agent:cancelling", in_flight=self.in_flight())
        for d in list(self._in_flight.values()):
            d.cancel()

    def _maybe_stopped(self):
        if self._in_flight:
            return
        if self._grace_call is not None and self._grace_call.active():
            self._grace_call.cancel()
        self._grace_call = None
        waiters, self._stop_waiters = self._stop_waiters, []
        for stopped in waiters:
            stopped.callback(None)

    # -- the loop ------------------------------------------------------------

    def _tick(self):
        self._next = None
        self._iteration = d = self.iterate()
        d.addBoth(self._iterated)

    def _iterated(self, result):
        self._iteration = None
        failed = isinstance(result, Failure) or self._change_failed
        self._change_failed = False
        if isinstance(result, Failure) and not result.check(CancelledError):
            Message.log(message_type="flocker_zfs:agent:iteration_failed",
                        reason=_reason(result.value))
        if not self.running:
            return None
        self._failures = self._failures + 1 if failed else 0
        self._next = self.reactor.callLater(self.next_delay(), self._tick)
        return None

    @_deferred
    async def iterate(self):
        """
        One iteration (module docstring), as an ``AGENT_ITERATION`` action
        whose success fields say which changes started (``started``), which
        were left for later (``skipped``: dataset id -> ``"busy"``,
        ``"max_parallel"`` or ``"stopping"``), which nodes did not answer
        (``unreachable``) and which datasets are in conflict (``conflicts``:
        dataset id -> description).

        :return: ``Deferred`` firing with those fields (``dict``) once the
            changes have *started*.
        """
        with start_action(action_type=AGENT_ITERATION, node_uuid=self.node_uuid) as action:
            summary = {"started": [], "skipped": {}, "unreachable": {}, "conflicts": {}}
            deployment = self._read_deployment()
            if deployment is not None and self.node_uuid not in deployment.nodes:
                Message.log(message_type="flocker_zfs:agent:not_in_deployment",
                            node_uuid=self.node_uuid, path=self.deployment_file.path)
                deployment = None
            if deployment is not None:
                local = await discover_state(self.backend, open_files=self._open_files,
                                             reactor=self.reactor)
                others = await self._cluster_state(deployment, summary["unreachable"])
                nodes = dict(others)
                nodes[self.node_uuid] = local
                plan = calculate_changes(deployment, ClusterState(nodes=nodes), local,
                                         refresh=self.due(deployment))
                self._start_changes(plan, deployment, summary)
                self._report_conflicts(deployment, nodes, summary["conflicts"])
            action.add_success_fields(**summary)
            return summary

    def _read_deployment(self):
        """
        :return: the deployment to converge to, or ``None`` if there never
            was a good one.
        """
        try:
            with start_action(action_type=AGENT_DEPLOYMENT,
                              path=self.deployment_file.path) as action:
                changed = self.deployment_file.read()
                fields = {"changed": changed, "valid": self.deployment_file.error is None}
                if self.deployment is not None:
                    fields.update(nodes=len(self.deployment.nodes),
                                  datasets=len(self.deployment.datasets))
                action.add_success_fields(**fields)
        except ConfigError:
            pass    # the failed action logged it; the last good one is kept
        return self.deployment

    def _report_conflicts(self, deployment, nodes, conflicts):
        """
        Log each dataset in conflict, with the nodes involved and the fix.

        :param dict conflicts: filled with dataset id -> description.
        """
        for conflict in find_conflicts(deployment, nodes):
            conflicts[conflict.dataset_id] = conflict.describe()
            Message.log(message_type=CONFLICT_MESSAGE, dataset_id=conflict.dataset_id,
                        primary=conflict.primary, writable=list(conflict.writable),
                        keeper=conflict.keeper,
                        conflict_copies=[uuid for uuid, _ in conflict.demoted],
                        reason=conflict.describe(), fix=conflict.fix())

    # -- other nodes ---------------------------------------------------------

    def peer(self, address):
        """
        :return: the ``IPeer`` to ``address`` (a ``NodeAddress``), made once.
        """
        peer = self._peers.get(address)
        if peer is None:
            peer = self._peers[address] = self._make_peer(address)
        return peer

    async def _cluster_state(self, deployment, unreachable):
        """
        Ask every other node of ``deployment`` for its state, in parallel.

        :param dict unreachable: filled with node uuid -> reason.
        :return: ``{node uuid: NodeState}`` of the nodes that answered.
        """
        others = sorted(uuid for uuid in deployment.nodes if uuid != self.node_uuid)
        queries = [self._query(deployment.nodes[uuid]) for uuid in others]
        try:
            results = await gatherResults(queries, consumeErrors=True)
        except FirstError as error:
            # A query fails only when cancelled (the agent stopping): let that
            # CancelledError itself end the iteration, not a wrapper around it.
            error.subFailure.raiseException()
        states = {}
        for uuid, (state, reason) in zip(others, results):
            if state is None:
                unreachable[uuid] = reason
            else:
                states[uuid] = state
        return states

    @_deferred
    async def _query(self, address):
        """
        :return: ``Deferred`` firing with ``(NodeState, None)``, or
            ``(None, reason)`` when the node cannot tell.
        """
        with start_action(action_type=AGENT_CLUSTER_STATE, node_uuid=address.uuid,
                          address=address.address) as action:
            try:
                d = maybeDeferred(self.peer(address).call, DATASETS)
                d.addTimeout(self.query_timeout, self.reactor)
                response = await d
                if not isinstance(response, dict) or "node_state" not in response:
                    raise ConfigError("its answer to datasets has no node_state")
                state = node_state_from_json(response["node_state"])
                if state.node_uuid != address.uuid:
                    raise ConfigError(
                        "%s answers as node %s, but the deployment file says it is node %s"
                        % (address.address, state.node_uuid, address.uuid),
                        fix="Correct the node's uuid or address in the deployment file.")
            except CancelledError:
                raise   # the agent is stopping
            except TimeoutError:
                reason = "no answer within %g seconds" % (self.query_timeout,)
                error = "TimeoutError"
            except Exception as caught:
                reason, error = _reason(caught), type(caught).__name__
                if is_unknown_verb(caught, DATASETS):
                    reason = ("it runs an older flocker-zfs without the datasets request; "
                              "upgrade it")
            else:
                action.add_success_fields(reachable=True, datasets=len(state.datasets))
                return state, None
            action.add_success_fields(reachable=False, reason=reason, error=error)
            return None, reason

    # -- changes -------------------------------------------------------------

    def _context(self, deployment):
        def peer(node_uuid):
            address = deployment.nodes.get(node_uuid)
            if address is None:
                raise ConfigError("node %s is not in the deployment file" % (node_uuid,))
            return self.peer(address)
        return ChangeContext(backend=self.backend, replicator=self.replicator, peer=peer,
                             confirm_create=self.confirm_create)

    @_deferred
    async def confirm_create(self, dataset_id):
        """
        Right before creating ``dataset_id``: is it still this node's to
        create?  The plan may be a query timeout old, and another node may
        have created the dataset meanwhile (or its deployment file may name
        another primary), so the file is read again and every other node
        asked again.

        :return: ``Deferred`` firing with ``None`` to go ahead, or the reason
            not to.
        """
        deployment = self._read_deployment()
        wanted = None if deployment is None else deployment.datasets.get(dataset_id)
        if (wanted is None or wanted.deleted or wanted.primary != self.node_uuid
                or self.node_uuid not in deployment.nodes):
            return ("the deployment file %s no longer names this node as its primary"
                    % (self.deployment_file.path,))
        unreachable = {}
        others = await self._cluster_state(deployment, unreachable)
        if unreachable:
            node = sorted(unreachable)[0]
            return "node %s did not answer (%s)" % (node, unreachable[node])
        holders = sorted(uuid for uuid, state in others.items() if state.holds(dataset_id))
        if holders:
            return "node %s holds a copy now" % (", ".join(holders),)
        # A second look here too: zfs-fuse under load has answered a
        # recursive listing without a filesystem it holds.
        local = await self.backend.discover()
        if dataset_id in local.datasets or dataset_id in unmanaged_ids(local):
            return "this node holds a copy already"
        return None

    def _start_changes(self, plan, deployment, summary):
        """
        Start the plan's top-level changes, one per dataset at a time and at
        most ``max_parallel`` at once; the datasets waiting longest go first,
        so a change that keeps failing cannot starve the others.
        """
        changes = sorted(plan.changes, key=lambda change: self._last_started.get(
            _dataset_of(change), float("-inf")))
        context = self._context(deployment)
        for change in changes:
            dataset_id = _dataset_of(change)
            if not self._accepting:
                summary["skipped"][dataset_id] = "stopping"
            elif dataset_id in self._in_flight:
                summary["skipped"][dataset_id] = "busy"
            elif self._slots.tokens == 0:
                summary["skipped"][dataset_id] = "max_parallel"
            else:
                summary["started"].append(dataset_id)
                self._start(change, context)
        if summary["skipped"]:
            Message.log(message_type="flocker_zfs:agent:skipped",
                        skipped=summary["skipped"])

    def _start(self, change, context):
        dataset_id = _dataset_of(change)
        self._slots.acquire()   # a token is free: this fires at once
        started = self._last_started[dataset_id] = self.reactor.seconds()
        d = maybeDeferred(run_state_change, change, context)
        # Registered before any callback: a change may finish synchronously.
        self._in_flight[dataset_id] = d

        def ended(result):
            del self._in_flight[dataset_id]
            self._slots.release()
            if isinstance(result, Failure):
                self._change_failed = True
                Message.log(message_type="flocker_zfs:agent:change_failed",
                            dataset_id=dataset_id, error=result.type.__name__,
                            reason=_reason(result.value))
            elif _pushes(change):
                # Its snapshot was taken about when it started.
                self._replicated[dataset_id] = started
            self._maybe_stopped()
            return None
        d.addBoth(ended)


def agent_from_config(reactor, config, runner=None, make_peer=None):
    """
    The agent of ``agent.yml``: its backend (started), SSH peers, deployment
    file and tuning (``poll_interval``, ``max_parallel``,
    ``replication_interval``, ``max_backoff``, ``stop_grace``,
    ``query_timeout``) from the ``dataset:`` section.

    :param config: an :class:`~flocker_zfs._config.AgentConfig`.
    :param runner: an ``IRunner`` for the backend (tests pass a fake).
    :param make_peer: default SSH peers from ``config.settings.ssh_config()``.
    :return: ``Deferred`` firing with the (not yet started)
        :class:`AgentService`.
    :raises ConfigError: settings the agent cannot use; the backend's own
        start-up errors (``PoolNotFound``, ``ZFSNotInstalled``...).
    """
    return Deferred.fromCoroutine(_agent_from_config(reactor, config, runner, make_peer))


async def _agent_from_config(reactor, config, runner, make_peer):
    settings = config.settings
    deployment = getattr(settings, "deployment", None)
    if not isinstance(deployment, str):
        raise ConfigError("backend %s has no deployment file setting; the reference agent "
                          "runs the zfs backend" % (config.backend,))
    if make_peer is None:
        make_peer = ssh_peers(reactor, settings.ssh_config())
    backend = await backend_from_config(reactor, config, runner=runner)
    return AgentService(reactor, backend, deployment, make_peer,
                        poll_interval=settings.poll_interval,
                        max_parallel=settings.max_parallel,
                        replication_interval=settings.replication_interval,
                        max_backoff=settings.max_backoff, stop_grace=settings.stop_grace,
                        query_timeout=settings.query_timeout)


__all__ = ["AgentService", "agent_from_config", "ssh_peers", "backoff_delay"]
