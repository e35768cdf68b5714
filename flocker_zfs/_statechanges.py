# test-case-name: flocker_zfs.test.test_statechanges
"""
State changes: what the deployer decided to do, as immutable values.

:func:`flocker_zfs._deployer.calculate_changes` returns them without doing
anything; :func:`run_state_change` does one, against a
:class:`ChangeContext` (this node's backend, its replicator and a way to
reach peers).  Each change runs inside its own eliot action
(``flocker_zfs:change:*``), so a plan's log shows what was decided and how
each step ended; the backend's and replicator's actions nest inside.
"""

import os

from eliot import Message, start_action
from eliot.twisted import DeferredContext
from pyrsistent import PClass, field, pvector_field
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred, succeed
from zope.interface import Attribute, Interface, implementer

from . import _commands as commands
from ._actions import (
    CHANGE_CREATE, CHANGE_DELETE, CHANGE_DEMOTE, CHANGE_HANDOFF, CHANGE_IN_PARALLEL,
    CHANGE_PUSH, CHANGE_RECOVER, CHANGE_RESIZE, CHANGE_SEQUENTIALLY)
from ._conflict import conflict_snapshot_name
from ._protocol import STATE
from .errors import DatasetNotFound, FlockerZFSError
from .names import dataset_name, is_dataset_id, snapshot_name


class CreateWithdrawn(FlockerZFSError):
    """
    A planned create was not done: checked again right before it, this node
    is no longer the dataset's primary, or another node holds it now or did
    not answer.  Nothing was created.
    """

    fix = ("Nothing to do if the deployment file changed or another node just created "
           "the dataset: the next iteration plans again. If this repeats, check that every "
           "node's deployment file names the same primary.")


class IStateChange(Interface):
    """
    One change to this node's datasets, decided by the deployer.
    """

    eliot_action = Attribute(
        "A new, started eliot action describing one run of this change "
        "(``flocker_zfs:change:*`` with its inputs).")

    def run(context):
        """
        Do the change, inside a new :attr:`eliot_action`.

        :param ChangeContext context: this node's backend, replicator and peers.
        :return: ``Deferred`` firing when done, or failing with the typed
            error of the step that failed.
        """


class ChangeContext(PClass):
    """
    What state changes act on.

    :ivar backend: this node's ``IStorageBackend`` (a :class:`ZFSBackend`).
    :ivar replicator: its :class:`~flocker_zfs.Replicator`.
    :ivar peer: ``callable(node_uuid) -> IPeer`` reaching another node of
        the deployment.
    :ivar confirm_create: ``None``, or ``callable(dataset_id) -> Deferred``
        firing with ``None`` when a planned create may go ahead, or with the
        reason it must not (the plan may be seconds old: the reference agent
        reads the deployment file and asks the other nodes again).
    """

    backend = field(mandatory=True)
    replicator = field(mandatory=True)
    peer = field(mandatory=True)
    confirm_create = field(initial=None)


def _dataset_id(value):
    return (is_dataset_id(value), "dataset_id must be a lowercase UUID: %r" % (value,))


def _node_uuid(value):
    return (is_dataset_id(value), "node_uuid must be a lowercase UUID: %r" % (value,))


def _size(value):
    return (value is None or value > 0, "maximum_size must be > 0 or None: %r" % (value,))


def _in_action(action, work):
    """
    Run ``work()`` (returning a ``Deferred`` or a value, or raising) inside
    ``action``, finishing the action with its outcome.
    """
    with action.context():
        return DeferredContext(maybeDeferred(work)).addActionFinish()


def _ignore_result(result):
    return None


@implementer(IStateChange)
class CreateDataset(PClass):
    """
    Create the dataset here, writable and owned by this node, after asking
    the context's ``confirm_create`` (if any) right before: two nodes that
    both create a dataset make a split brain (:mod:`flocker_zfs._conflict`),
    so the plan's view, which may be seconds old, is checked again.
    """

    dataset_id = field(type=str, mandatory=True, invariant=_dataset_id)
    maximum_size = field(type=(int, type(None)), initial=None, invariant=_size)

    @property
    def eliot_action(self):
        return start_action(action_type=CHANGE_CREATE, dataset_id=self.dataset_id,
                            maximum_size=self.maximum_size)

    def run(self, context):
        return _in_action(self.eliot_action,
                          lambda: Deferred.fromCoroutine(self._create(context)))

    async def _create(self, context):
        if context.confirm_create is not None:
            reason = await maybeDeferred(context.confirm_create, self.dataset_id)
            if reason is not None:
                raise CreateWithdrawn("not creating dataset %s: %s" % (self.dataset_id, reason))
        await context.backend.create(self.dataset_id, self.maximum_size)


@implementer(IStateChange)
class ResizeDataset(PClass):
    """
    Change the maximum size of the dataset this node owns.
    """

    dataset_id = field(type=str, mandatory=True, invariant=_dataset_id)
    maximum_size = field(type=(int, type(None)), initial=None, invariant=_size)

    @property
    def eliot_action(self):
        return start_action(action_type=CHANGE_RESIZE, dataset_id=self.dataset_id,
                            maximum_size=self.maximum_size)

    def run(self, context):
        return _in_action(self.eliot_action, lambda: context.backend.resize(
            self.dataset_id, self.maximum_size).addCallback(_ignore_result))


@implementer(IStateChange)
class PushDataset(PClass):
    """
    Replicate the dataset this node owns to node ``node_uuid``.
    """

    dataset_id = field(type=str, mandatory=True, invariant=_dataset_id)
    node_uuid = field(type=str, mandatory=True, invariant=_node_uuid)

    @property
    def eliot_action(self):
        return start_action(action_type=CHANGE_PUSH, dataset_id=self.dataset_id,
                            node_uuid=self.node_uuid)

    def run(self, context):
        return _in_action(self.eliot_action, lambda: context.replicator.push(
            self.dataset_id, context.peer(self.node_uuid)).addCallback(_ignore_result))


@implementer(IStateChange)
class HandoffDataset(PClass):
    """
    Make node ``node_uuid`` the dataset's writable owner; this node keeps a
    read-only replica.
    """

    dataset_id = field(type=str, mandatory=True, invariant=_dataset_id)
    node_uuid = field(type=str, mandatory=True, invariant=_node_uuid)

    @property
    def eliot_action(self):
        return start_action(action_type=CHANGE_HANDOFF, dataset_id=self.dataset_id,
                            node_uuid=self.node_uuid)

    def run(self, context):
        return _in_action(self.eliot_action, lambda: context.replicator.handoff(
            self.dataset_id, context.peer(self.node_uuid)).addCallback(_ignore_result))


@implementer(IStateChange)
class RecoverHandoff(PClass):
    """
    Settle an interrupted handoff of the dataset to node ``node_uuid``;
    with ``abort``, take it back here where that is provably safe.
    """

    dataset_id = field(type=str, mandatory=True, invariant=_dataset_id)
    node_uuid = field(type=str, mandatory=True, invariant=_node_uuid)
    abort = field(type=bool, initial=False)

    @property
    def eliot_action(self):
        return start_action(action_type=CHANGE_RECOVER, dataset_id=self.dataset_id,
                            node_uuid=self.node_uuid, abort=self.abort)

    def run(self, context):
        return _in_action(self.eliot_action, lambda: context.replicator.recover(
            self.dataset_id, context.peer(self.node_uuid), abort=self.abort
        ).addCallback(_ignore_result))


@implementer(IStateChange)
class DemoteDataset(PClass):
    """
    Settle a split brain from this side: make this node's writable copy of
    the dataset read-only because node ``node_uuid`` (the keeper) has a
    writable copy ranked above it (:mod:`flocker_zfs._conflict`).  Its data
    and snapshots stay; a ``flocker-conflict-...`` snapshot marks it as a
    conflict copy (status shows it as the newest snapshot) and records its
    state at that moment.

    Right before, under the dataset's lock, the keeper is asked again: the
    copy is demoted only if the keeper's copy is still writable (so the two
    never both end read-only through a stale view) and this one still is.
    """

    dataset_id = field(type=str, mandatory=True, invariant=_dataset_id)
    node_uuid = field(type=str, mandatory=True, invariant=_node_uuid)

    @property
    def eliot_action(self):
        return start_action(action_type=CHANGE_DEMOTE, dataset_id=self.dataset_id,
                            node_uuid=self.node_uuid)

    def run(self, context):
        action = self.eliot_action
        return _in_action(action, lambda: Deferred.fromCoroutine(self._demote(context, action)))

    async def _demote(self, context, action):
        backend = context.backend
        await backend.start()
        # The backend's lock and runner: demoting is not (yet) a backend
        # operation; the replicator drives the backend the same way.
        async with backend.locked(self.dataset_id):
            local = await backend._get(self.dataset_id)
            if not local.writable:
                action.add_success_fields(outcome="already read-only")
                return
            theirs = await context.peer(self.node_uuid).call(STATE, self.dataset_id)
            if not (theirs.get("exists") and theirs.get("writable")):
                action.add_success_fields(outcome="keeper not writable")
                return
            name = conflict_snapshot_name(backend._reactor.seconds(), self.node_uuid,
                                          os.urandom(3).hex())
            await backend._runner.run(commands.snapshot(
                snapshot_name(backend.pool, self.dataset_id, name)))
            await backend._runner.run(commands.set_property(
                dataset_name(backend.pool, self.dataset_id), "readonly", "on"))
            action.add_success_fields(outcome="demoted", snapshot=name)


def _already_gone(failure):
    failure.trap(DatasetNotFound)
    return None


@implementer(IStateChange)
class DeleteDataset(PClass):
    """
    Destroy this node's copy of the dataset (owned or replica).  A copy that
    is already gone counts as deleted.  The backend refuses a busy dataset
    or one with snapshots flocker-zfs did not take, destroying nothing.
    """

    dataset_id = field(type=str, mandatory=True, invariant=_dataset_id)

    @property
    def eliot_action(self):
        return start_action(action_type=CHANGE_DELETE, dataset_id=self.dataset_id)

    def run(self, context):
        return _in_action(self.eliot_action, lambda: context.backend.destroy(
            self.dataset_id).addErrback(_already_gone))


def _is_change(change):
    return (IStateChange.providedBy(change), "not a state change: %r" % (change,))


def _optional_dataset_id(value):
    return (value is None or is_dataset_id(value),
            "dataset_id must be a lowercase UUID or None: %r" % (value,))


@implementer(IStateChange)
class Sequentially(PClass):
    """
    Run ``changes`` one after the other, stopping at the first failure
    (which the whole fails with).

    :ivar dataset_id: the one dataset they all concern, or ``None``.
    """

    changes = pvector_field(object, item_invariant=_is_change)
    dataset_id = field(type=(str, type(None)), initial=None, invariant=_optional_dataset_id)

    @property
    def eliot_action(self):
        return start_action(action_type=CHANGE_SEQUENTIALLY, dataset_id=self.dataset_id,
                            changes=len(self.changes))

    def run(self, context):
        return _in_action(self.eliot_action, lambda: self._run(context))

    def _run(self, context):
        # Through a DeferredContext, so each later change starts inside this
        # action even when the one before it finished in another context.
        chain = DeferredContext(succeed(None))
        for change in self.changes:
            chain.addCallback(lambda _, change=change: run_state_change(change, context))
        return chain.result


@implementer(IStateChange)
class InParallel(PClass):
    """
    Start all ``changes`` at once and wait for every one; then fail with the
    first failure (in the order of ``changes``) if any failed.  Every
    failure is logged, in its own change's action and as a message here.
    """

    changes = pvector_field(object, item_invariant=_is_change)

    @property
    def eliot_action(self):
        return start_action(action_type=CHANGE_IN_PARALLEL, changes=len(self.changes))

    def run(self, context):
        return _in_action(self.eliot_action, lambda: self._run(context))

    def _run(self, context):
        running = [run_state_change(change, context) for change in self.changes]
        done = DeferredContext(DeferredList(running, consumeErrors=True))
        return done.addCallback(_first_failure).result


def _first_failure(results):
    failures = [result for ok, result in results if not ok]
    for failure in failures:
        Message.log(message_type="flocker_zfs:change:failed",
                    exception=failure.type.__module__ + "." + failure.type.__name__,
                    reason=str(failure.value))
    if failures:
        return failures[0]
    return None


def run_state_change(change, context):
    """
    Run ``change`` (an :class:`IStateChange`) against ``context``.

    :return: ``Deferred`` firing with ``None`` when it is done, or failing
        with the first error; never raises.
    """
    return maybeDeferred(change.run, context)
