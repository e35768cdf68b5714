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
from .._statechanges import (
    CreateDataset, DeleteDataset, HandoffDataset, InParallel, PushDataset, ResizeDataset)
from .test_deployer import (
    D0, D1, D2, MiB, N0, NODES, OUTSIDER, UNLISTED, copy, desired, flatten, want)


# -- planning ---------------------------------------------------------------------

ALL_NODES = NODES + (OUTSIDER,)
SIZES = st.sampled_from([None, 8 * MiB, 16 * MiB])


@st.composite
def deployments(draw):
    datasets = []
    for dataset_id in (D0, D1, D2):
        if draw(st.booleans()):
            datasets.append(want(
                dataset_id, draw(st.sampled_from(NODES)),
                replicas=draw(st.sets(st.sampled_from(NODES))),
                deleted=draw(st.booleans()), maximum_size=draw(SIZES)))
    return desired(*datasets)


@st.composite
def copies(draw, dataset_id):
    markers = st.one_of(st.none(), st.none(), st.none(),
                        st.sampled_from(ALL_NODES).map(lambda n: "%s:2" % (n,)),
                        st.sampled_from(ALL_NODES).map(lambda n: "%s:3:acquiring" % (n,)),
                        st.just("junk"))
    guids = draw(st.lists(st.sampled_from([1, 2, 3]), unique=True, max_size=3))
    return copy(dataset_id, draw(st.one_of(st.none(), st.sampled_from(ALL_NODES))),
                writable=draw(st.booleans()), guids=sorted(guids),
                maximum_size=draw(SIZES), handoff=draw(markers))


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
        states[n] = NodeState(node_uuid=n, datasets=held, in_use=in_use)
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
            for n in draw(st.sets(st.sampled_from(ALL_NODES))):
                held[n][d.dataset_id] = draw(copies(d.dataset_id)).set(handoff=None)
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
        Never a create for a dataset that any node that answered holds, nor
        while a node of the deployment did not answer.
        """
        deployment, states = situation
        held = {d for s in states.values() for d in s.datasets}
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
        is in use there or a handoff of it is to be recovered first; no node
        deletes anything else.
        """
        deployment, states = situation
        for me, plan in self.plans(deployment, states).items():
            deletes = {c.dataset_id for c in flatten(plan) if isinstance(c, DeleteDataset)}
            expected = {d for d, wanted in deployment.datasets.items()
                        if wanted.deleted and d in states[me].datasets
                        and d not in states[me].in_use
                        and states[me].datasets[d].handoff is None}
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
            st.dictionaries(st.sampled_from(["node_uuid", "datasets", "in_use", D0, N0,
                                             "owner", "snapshots", "guid", "name"]),
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
