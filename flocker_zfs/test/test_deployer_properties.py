"""
Property tests (hypothesis) of :mod:`flocker_zfs._deployer`: the plan
:func:`calculate_changes` over generated clusters, for every node that
answered, and node states as JSON (generated states round-trip, garbage is
refused cleanly).  The examples, one per rule, are in ``test_deployer``,
whose builders (``desired``, ``want``, ``copy``...) these use.
"""

import json

from hypothesis import given, settings, strategies as st
from twisted.trial.unittest import SynchronousTestCase

from .._deployer import (
    ClusterState, InvalidNodeState, NodeState, calculate_changes, node_state_from_json,
    node_state_to_json)
from .._conflict import is_conflict_copy, rank, writable_copies
from .._statechanges import (
    CreateDataset, DeleteDataset, DemoteDataset, HandoffDataset, InParallel, PushDataset,
    ResizeDataset)
from .test_deployer import (
    D0, D1, D2, MiB, N0, NODES, OUTSIDER, UNLISTED, conflicted, copy, desired, flatten, want)


# -- planning ---------------------------------------------------------------------

ALL_NODES = NODES + (OUTSIDER,)
SIZES = st.sampled_from([None, 8 * MiB, 16 * MiB])


@st.composite
def deployments(draw, every=False):
    """
    :param every: list every dataset, none deleted, each wanting replicas.
    """
    datasets = []
    for dataset_id in (D0, D1, D2):
        if every or draw(st.booleans()):
            datasets.append(want(
                dataset_id, draw(st.sampled_from(NODES)),
                replicas=draw(st.sets(st.sampled_from(NODES), min_size=2 if every else 0)),
                deleted=not every and draw(st.booleans()), maximum_size=draw(SIZES)))
    return desired(*datasets)


@st.composite
def copies(draw, dataset_id):
    markers = st.one_of(st.none(), st.none(), st.none(),
                        st.sampled_from(ALL_NODES).map(lambda n: "%s:2" % (n,)),
                        st.sampled_from(ALL_NODES).map(lambda n: "%s:3:acquiring" % (n,)),
                        st.just("junk"))
    guids = draw(st.lists(st.sampled_from([1, 2, 3]), unique=True, max_size=3))
    owner = draw(st.one_of(st.none(), st.sampled_from(ALL_NODES)))
    if draw(st.integers(0, 5)) == 0:
        return conflicted(dataset_id, owner, guids=sorted(guids))
    return copy(dataset_id, owner, writable=draw(st.booleans()), guids=sorted(guids),
                maximum_size=draw(SIZES), handoff=draw(markers)).set(
                    generation=draw(st.integers(0, 3)))


@st.composite
def clusters(draw):
    """
    Every node's state (known or not), as ``{uuid: NodeState}``.
    """
    states = {}
    for n in ALL_NODES:
        held = {}
        for dataset_id in (D0, D1, D2, UNLISTED):
            if draw(st.booleans()):
                held[dataset_id] = draw(copies(dataset_id))
        in_use = draw(st.sets(st.sampled_from(sorted(held)))) if held else set()
        free = sorted({D0, D1, D2, UNLISTED} - set(held))
        unmanaged = draw(st.sets(st.sampled_from(free))) if free else set()
        states[n] = NodeState(node_uuid=n, datasets=held, in_use=in_use, unmanaged=unmanaged)
    return states


@st.composite
def situations(draw):
    """
    ``(deployment, {uuid: NodeState} of the nodes that answered)``.
    """
    deployment = draw(deployments())
    states = draw(clusters())
    known = draw(st.sets(st.sampled_from(ALL_NODES), min_size=1))
    return deployment, {n: s for n, s in states.items() if n in known}


@st.composite
def converged(draw):
    """
    A deployment and a cluster that already matches it (every node known).
    """
    deployment = draw(deployments())
    held = {n: {} for n in ALL_NODES}
    in_use = {n: set() for n in ALL_NODES}
    for d in deployment.datasets.values():
        if d.deleted:
            writer = draw(st.sampled_from(ALL_NODES))
            for n in draw(st.sets(st.sampled_from(ALL_NODES))):
                survivor = draw(copies(d.dataset_id)).set(handoff=None)
                if n != writer:  # two writable copies would be a conflict
                    survivor = survivor.set(writable=False)
                held[n][d.dataset_id] = survivor
                if not is_conflict_copy(survivor):  # a conflict copy survives anyway
                    in_use[n].add(d.dataset_id)  # only copies in use survive a delete
            continue
        guids = sorted(draw(st.lists(st.sampled_from([1, 2, 3]), unique=True, min_size=1)))
        held[d.primary][d.dataset_id] = copy(d.dataset_id, d.primary, writable=True,
                                             guids=guids, maximum_size=d.maximum_size)
        for n in ALL_NODES:
            if n == d.primary:
                continue
            if n in d.replicas:
                held[n][d.dataset_id] = copy(d.dataset_id, d.primary, guids=guids[-1:])
            elif draw(st.booleans()):  # an old replica, not wanted: kept as it is
                held[n][d.dataset_id] = copy(d.dataset_id, d.primary,
                                             guids=draw(st.sampled_from([(), (1,), (9,)])))
            elif draw(st.booleans()):  # a conflict copy, waiting for the operator
                held[n][d.dataset_id] = conflicted(d.dataset_id, n)
            if d.dataset_id in held[n] and draw(st.booleans()):
                in_use[n].add(d.dataset_id)
        if draw(st.booleans()):
            in_use[d.primary].add(d.dataset_id)
    for n in ALL_NODES:
        if draw(st.booleans()):
            held[n][UNLISTED] = draw(copies(UNLISTED))
    states = {n: NodeState(node_uuid=n, datasets=held[n],
                           in_use=in_use[n] & set(held[n])) for n in ALL_NODES}
    return deployment, states


class CalculateChangesPropertyTests(SynchronousTestCase):
    """
    Properties of :func:`calculate_changes` over generated clusters, for
    every node that answered.
    """

    def plans(self, deployment, states):
        """
        :return: ``{uuid: plan}`` for each node that answered.
        """
        state = ClusterState(nodes=states)
        return {me: calculate_changes(deployment, state, local)
                for me, local in states.items()}

    @settings(max_examples=300, deadline=None)
    @given(converged())
    def test_converged_empty(self, situation):
        """
        A cluster that matches the deployment gets an empty plan on every node.
        """
        deployment, states = situation
        for me, plan in self.plans(deployment, states).items():
            self.assertEqual(plan, InParallel(changes=[]), me)

    @settings(max_examples=300, deadline=None)
    @given(converged())
    def test_converged_refresh(self, situation):
        """
        With every dataset due for refresh, a converged cluster's plans are
        exactly one push from each primary to each of its wanted replicas.
        """
        deployment, states = situation
        refresh = frozenset(deployment.datasets) | {UNLISTED}
        state = ClusterState(nodes=states)
        for me, local in states.items():
            plan = calculate_changes(deployment, state, local, refresh=refresh)
            expected = [PushDataset(dataset_id=d, node_uuid=n)
                        for d, wanted in sorted(deployment.datasets.items())
                        if not wanted.deleted and wanted.primary == me
                        for n in sorted(wanted.replicas - {me})]
            self.assertEqual(flatten(plan), expected, me)

    @settings(max_examples=300, deadline=None)
    @given(situations())
    def test_never_create_held(self, situation):
        """
        Never a create for a dataset that any node that answered holds
        (managed or unmanaged), nor while a node of the deployment did not
        answer.
        """
        deployment, states = situation
        held = {d for s in states.values() for d in set(s.datasets) | set(s.unmanaged)}
        for me, plan in self.plans(deployment, states).items():
            for change in flatten(plan):
                if isinstance(change, CreateDataset):
                    self.assertNotIn(change.dataset_id, held)
                    self.assertTrue(set(deployment.nodes) <= set(states))
                    self.assertEqual(deployment.datasets[change.dataset_id].primary, me)

    @settings(max_examples=300, deadline=None)
    @given(situations())
    def test_in_use_kept(self, situation):
        """
        A dataset in use on a node is never deleted, handed off or resized
        by that node.
        """
        deployment, states = situation
        for me, plan in self.plans(deployment, states).items():
            for change in flatten(plan):
                if isinstance(change, (DeleteDataset, HandoffDataset, ResizeDataset)):
                    self.assertNotIn(change.dataset_id, states[me].in_use)

    @settings(max_examples=300, deadline=None)
    @given(situations())
    def test_deleted_everywhere(self, situation):
        """
        Every node holding a copy of a deleted dataset deletes it, unless it
        is in use there, a handoff of it is to be recovered first, it is a
        conflict copy, or the dataset is writable on more than one node; no
        node deletes anything else.
        """
        deployment, states = situation
        for me, plan in self.plans(deployment, states).items():
            deletes = {c.dataset_id for c in flatten(plan) if isinstance(c, DeleteDataset)}
            expected = {d for d, wanted in deployment.datasets.items()
                        if wanted.deleted and d in states[me].datasets
                        and d not in states[me].in_use
                        and states[me].datasets[d].handoff is None
                        and not is_conflict_copy(states[me].datasets[d])
                        and len(writable_copies(d, states)) <= 1}
            self.assertEqual(deletes, expected)

    @settings(max_examples=300, deadline=None)
    @given(situations())
    def test_shape(self, situation):
        """
        At most one top-level element per dataset, each naming it, each about
        a dataset of the deployment; every leaf is about that dataset.
        """
        deployment, states = situation
        for me, plan in self.plans(deployment, states).items():
            ids = [element.dataset_id for element in plan.changes]
            self.assertEqual(ids, sorted(set(ids)))
            self.assertTrue(set(ids) <= set(deployment.datasets))
            for element in plan.changes:
                for leaf in flatten(element):
                    self.assertEqual(leaf.dataset_id, element.dataset_id)

    @settings(max_examples=300, deadline=None)
    @given(situations())
    def test_only_known_peers(self, situation):
        """
        Pushes and handoffs go only to other nodes that answered; only a
        node owning the writable copy pushes or hands off.
        """
        deployment, states = situation
        for me, plan in self.plans(deployment, states).items():
            for change in flatten(plan):
                if isinstance(change, (PushDataset, HandoffDataset)):
                    self.assertIn(change.node_uuid, states)
                    self.assertNotEqual(change.node_uuid, me)
                    local = states[me].datasets.get(change.dataset_id)
                    if local is None:  # a push right after creating it here
                        self.assertIn(CreateDataset(
                            dataset_id=change.dataset_id,
                            maximum_size=deployment.datasets[change.dataset_id].maximum_size),
                            flatten(plan))
                    else:
                        self.assertTrue(local.owned_by(me) and local.writable)

    @settings(max_examples=300, deadline=None)
    @given(situations())
    def test_deterministic(self, situation):
        """
        The same inputs give the same plan, whether or not this node is in the
        cluster state and however the maps were built.
        """
        deployment, states = situation
        first = self.plans(deployment, states)
        reordered = dict(reversed(list(states.items())))
        self.assertEqual(self.plans(deployment, reordered), first)
        for me, local in states.items():
            without = ClusterState(nodes={n: s for n, s in states.items() if n != me})
            self.assertEqual(calculate_changes(deployment, without, local), first[me])


@st.composite
def split_clusters(draw):
    """
    Like :func:`clusters`, but each node's copy of each dataset is one of
    the kinds a split brain involves: none, writable (owned by that node or
    not, at some generation), a replica, or a conflict copy.
    """
    states = {}
    for n in ALL_NODES:
        held = {}
        for dataset_id in (D0, D1, D2):
            kind = draw(st.sampled_from(["none", "writable", "replica", "conflict"] * 2
                                        + ["writable", "conflict"]))
            owner = draw(st.sampled_from([n] * 6 + [None] + list(ALL_NODES)))
            guids = sorted(draw(st.lists(st.sampled_from([1, 2, 3]), unique=True, max_size=3)))
            if kind == "writable":
                held[dataset_id] = copy(dataset_id, owner, writable=True, guids=guids).set(
                    generation=draw(st.integers(0, 2)))
            elif kind == "replica":
                held[dataset_id] = copy(dataset_id, owner, guids=guids)
            elif kind == "conflict":
                held[dataset_id] = conflicted(dataset_id, owner, guids=guids)
        in_use = draw(st.sets(st.sampled_from(sorted(held)), max_size=1)) if held else set()
        states[n] = NodeState(node_uuid=n, datasets=held, in_use=in_use)
    return states


@st.composite
def split_situations(draw):
    """
    ``(deployment, {uuid: NodeState} of the nodes that answered)`` from
    :func:`split_clusters`.
    """
    states = draw(split_clusters())
    known = draw(st.one_of(st.just(set(ALL_NODES)),
                           st.sets(st.sampled_from(ALL_NODES), min_size=1)))
    deployment = draw(st.one_of(deployments(), deployments(every=True)))
    return deployment, {n: s for n, s in states.items() if n in known}


def demoted(dataset):
    """
    :return: ``dataset`` as :class:`DemoteDataset` leaves it.
    """
    return conflicted(dataset.dataset_id, dataset.owner, generation=dataset.generation).set(
        snapshots=dataset.snapshots + conflicted(dataset.dataset_id, None).snapshots[-1:],
        handoff=dataset.handoff)


class ConflictPropertyTests(SynchronousTestCase):
    """
    Split brain (:mod:`flocker_zfs._conflict`) over generated clusters.
    """

    def plans(self, deployment, states):
        state = ClusterState(nodes=states)
        return {me: calculate_changes(deployment, state, local)
                for me, local in states.items()}

    def settled(self, deployment, states):
        """
        :return: ``states`` after each node ran the demotions its plan has.
        """
        after = dict(states)
        for me, plan in self.plans(deployment, states).items():
            for change in flatten(plan):
                if isinstance(change, DemoteDataset):
                    local = after[me].datasets[change.dataset_id]
                    after[me] = after[me].transform(["datasets", change.dataset_id],
                                                    demoted(local))
        return after

    @settings(max_examples=300, deadline=None)
    @given(deployments(), st.one_of(clusters(), split_clusters()))
    def test_one_writable_after_one_round(self, deployment, states):
        """
        When every node answered and each runs its plan, every dataset of
        the deployment that was writable somewhere is writable on exactly
        one node: the desired primary if its copy was writable.
        """
        after = self.settled(deployment, states)
        for dataset_id, wanted in deployment.datasets.items():
            before = writable_copies(dataset_id, states)
            left = writable_copies(dataset_id, after)
            self.assertEqual(len(left), min(len(before), 1), dataset_id)
            if wanted.primary in before:
                self.assertEqual(list(left), [wanted.primary])

    @settings(max_examples=300, deadline=None)
    @given(st.one_of(situations(), split_situations()))
    def test_only_demotions_in_conflict(self, situation):
        """
        Whatever nodes answered: for a dataset writable on more than one of
        them, a node's plan is one :class:`DemoteDataset` of its own writable
        copy towards another node's writable copy, or nothing; the best
        ranked writable copy is never demoted.
        """
        deployment, states = situation
        for me, plan in self.plans(deployment, states).items():
            for element in plan.changes:
                writable = writable_copies(element.dataset_id, states)
                if len(writable) <= 1:
                    self.assertFalse(isinstance(element, DemoteDataset), element)
                    continue
                self.assertIsInstance(element, DemoteDataset)
                self.assertIn(me, writable)
                self.assertIn(element.node_uuid, set(writable) - {me})
                primary = deployment.datasets[element.dataset_id].primary
                self.assertNotEqual(me, primary)
                self.assertTrue(rank(primary, me, writable[me]) < rank(
                    primary, element.node_uuid, writable[element.node_uuid]))

    @settings(max_examples=300, deadline=None)
    @given(st.one_of(situations(), split_situations()), st.booleans())
    def test_conflict_copies_untouched(self, situation, settle):
        """
        A conflict copy is never pushed to, handed off to, deleted or
        demoted again, also once the conflicts are settled.
        """
        deployment, states = situation
        if settle:
            states = self.settled(deployment, states)
        for me, plan in self.plans(deployment, states).items():
            for change in flatten(plan):
                local = states[me].datasets.get(change.dataset_id)
                if isinstance(change, (PushDataset, HandoffDataset)):
                    remote = states[change.node_uuid].datasets.get(change.dataset_id)
                    self.assertFalse(remote is not None and is_conflict_copy(remote))
                if isinstance(change, (DeleteDataset, DemoteDataset)):
                    self.assertFalse(is_conflict_copy(local))


class NodeStateJSONPropertyTests(SynchronousTestCase):
    """
    Generated node states survive JSON; garbage is refused cleanly.
    """

    @settings(max_examples=200, deadline=None)
    @given(st.recursive(
        st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8),
                  st.sampled_from([N0, D0, "1", str(2 ** 64)])),
        lambda children: st.one_of(
            st.lists(children, max_size=3),
            st.dictionaries(st.sampled_from(["node_uuid", "datasets", "in_use", "unmanaged", D0,
                                             N0, "owner", "snapshots", "guid", "name"]),
                            children, max_size=4)),
        max_leaves=15))
    def test_garbage(self, value):
        """
        Garbage gives a :class:`NodeState` or :class:`InvalidNodeState`,
        never another exception.
        """
        try:
            result = node_state_from_json(value)
        except InvalidNodeState:
            pass
        else:
            self.assertIsInstance(result, NodeState)

    @settings(max_examples=100, deadline=None)
    @given(clusters())
    def test_round_trip(self, states):
        """
        Every generated state comes back equal from its JSON text.
        """
        for state in states.values():
            text = json.dumps(node_state_to_json(state))
            self.assertEqual(node_state_from_json(json.loads(text)), state)
