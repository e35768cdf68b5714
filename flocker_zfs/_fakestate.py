# test-case-name: flocker_zfs.test.test_fakezfs
"""
The state of the fake ZFS as immutable values, and the pure queries on it:
the dataset tree, property inheritance, dependents, ordering and space.

A :class:`FakeState` is a pyrsistent value, so a test can keep one from
before an operation and compare it with one from after.  Nothing here
touches the disk: a mounted dataset's ``content`` is whatever the fake last
read from its directory.
"""

from pyrsistent import PClass, field, pmap, pmap_field

from ._fakeprops import PATH, ZFS_FUSE, lookup

FILESYSTEM = "filesystem"
SNAPSHOT = "snapshot"

#: Bytes an empty filesystem references, as each implementation reports it
#: for a fresh file-backed pool (zfs-fuse: 112K; OpenZFS with ashift=9: 24K).
OVERHEAD = {ZFS_FUSE: 114688, "openzfs": 24576}

_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.: ")


class Link(PClass):
    """
    A symbolic link kept in a dataset's content.
    """

    target = field(type=str, mandatory=True)


class FakeDataset(PClass):
    """
    One filesystem or snapshot.

    :ivar str kind: :data:`FILESYSTEM` or :data:`SNAPSHOT`.
    :ivar local: properties set with ``zfs set``/``-o`` (native and user).
    :ivar received: properties set by ``zfs receive`` of a ``send -p`` stream.
    :ivar origin: for a clone, the snapshot it was cloned from.
    :ivar holds: hold tag -> the time (seconds) it was placed, for a snapshot.
    :ivar content: relative path -> ``bytes`` (file), ``None`` (directory) or
        :class:`Link`; as last captured when the dataset is mounted.
    :ivar resume_token: the ``receive_resume_token`` of an interrupted
        ``zfs receive -s``, else ``None``.
    :ivar bool partial: created by an interrupted ``receive -s`` and holding
        no complete snapshot yet (it cannot be mounted).
    """

    name = field(type=str, mandatory=True)
    kind = field(type=str, mandatory=True)
    guid = field(type=int, mandatory=True)
    createtxg = field(type=int, mandatory=True)
    creation = field(type=int, mandatory=True)
    local = pmap_field(str, object)
    received = pmap_field(str, object)
    origin = field(type=(str, type(None)), initial=None)
    holds = field(initial=pmap())
    content = field(initial=pmap())
    mounted = field(type=bool, initial=False)
    resume_token = field(type=(str, type(None)), initial=None)
    partial = field(type=bool, initial=False)


class FakePool(PClass):
    """
    One pool: its name, size in bytes and guid.
    """

    name = field(type=str, mandatory=True)
    size = field(type=int, mandatory=True)
    guid = field(type=int, mandatory=True)
    health = field(type=str, initial="ONLINE")


class FakeState(PClass):
    """
    Everything the fake ZFS knows, as one comparable value.

    :ivar pools: pool name -> :class:`FakePool`.
    :ivar datasets: full name (``pool/a/b``, ``pool/a@snap``) -> :class:`FakeDataset`.
    :ivar int txg: the last transaction group number used.
    """

    pools = pmap_field(str, FakePool)
    datasets = pmap_field(str, FakeDataset)
    txg = field(type=int, initial=1)

    def with_dataset(self, dataset):
        """
        :return: a new state with ``dataset`` added or replaced.
        """
        return self.transform(["datasets", dataset.name], dataset)

    def without(self, name):
        """
        :return: a new state without the dataset ``name``.
        """
        return self.set(datasets=self.datasets.remove(name))


def parent_name(name):
    """
    :return: the filesystem a snapshot belongs to, the parent of a
        filesystem, or ``None`` for a pool's root.
    """
    if "@" in name:
        return name.split("@", 1)[0]
    return name.rsplit("/", 1)[0] if "/" in name else None


def pool_of(name):
    """
    :return: the pool part of a dataset name.
    """
    return name.split("/", 1)[0].split("@", 1)[0]


def name_problem(name, kind, profile):
    """
    Check a dataset name the way ``zfs_validate_name`` does.

    :return: ZFS's explanation (``"invalid character '*' in name"``), or
        ``None`` if the name is fine.
    """
    if len(name.encode("utf-8")) >= 256:
        return "name is too long"
    if name.startswith("/"):
        return "leading slash in name"
    if kind == SNAPSHOT and "@" not in name:
        return "missing '@' delimiter in snapshot name"
    if kind == FILESYSTEM and "@" in name:
        if profile == ZFS_FUSE:
            return "snapshot delimiter '@' in filesystem name"
        return "snapshot delimiter '@' is not expected here"
    if name.count("@") > 1:
        return "multiple '@' delimiters in name"
    path = name.split("@", 1)[0]
    if path.endswith("/"):
        return "trailing slash in name"
    for part in path.split("/") + name.split("@")[1:]:
        if part == "":
            return "empty component in name"
        for char in part:
            if char not in _NAME_CHARS:
                return "invalid character '%s' in name" % (char,)
    return None


def sort_key(dataset):
    """
    The order ``zfs list``/``zfs get`` print datasets in: by filesystem name
    (bytewise), a filesystem before its snapshots, snapshots by creation.
    """
    base = dataset.name.split("@", 1)[0].encode("utf-8")
    return (base, dataset.kind == SNAPSHOT, dataset.createtxg)


def children(state, name):
    """
    :return: the child filesystems of filesystem ``name``, sorted by name.
    """
    prefix = name + "/"
    return sorted((d for d in state.datasets.values()
                   if d.kind == FILESYSTEM and d.name.startswith(prefix)
                   and "/" not in d.name[len(prefix):]),
                  key=sort_key)


def snapshots(state, name):
    """
    :return: the snapshots of filesystem ``name``, oldest first.
    """
    prefix = name + "@"
    return sorted((d for d in state.datasets.values() if d.name.startswith(prefix)),
                  key=lambda d: d.createtxg)


def subtree(state, name):
    """
    :return: ``name`` and every filesystem and snapshot below it, in
        ``zfs list -r`` order.
    """
    base = state.datasets[name]
    if base.kind == SNAPSHOT:
        return [base]
    found = [d for d in state.datasets.values()
             if d.name == name or d.name.startswith(name + "/") or d.name.startswith(name + "@")]
    return sorted(found, key=sort_key)


def clones_of(state, snapshot):
    """
    :return: the filesystems whose origin is ``snapshot``, sorted by name.
    """
    return sorted((d for d in state.datasets.values() if d.origin == snapshot), key=sort_key)


def dependents(state, name):
    """
    Everything that must go before ``name`` can be destroyed, in the order
    libzfs's ``zfs_iter_dependents`` visits it: child filesystems (each after
    its own dependents), then snapshots (each after its clones).

    :return: list of :class:`FakeDataset`.
    """
    found = []
    dataset = state.datasets[name]
    if dataset.kind == FILESYSTEM:
        for child in children(state, name):
            found.extend(dependents(state, child.name))
            found.append(child)
        for snap in snapshots(state, name):
            found.extend(dependents(state, snap.name))
            found.append(snap)
    else:
        for clone in clones_of(state, name):
            found.extend(dependents(state, clone.name))
            found.append(clone)
    return found


def _explicit(dataset, prop):
    """The ``(value, source)`` set on ``dataset`` itself, or ``None``."""
    if prop in dataset.local:
        return dataset.local[prop], "local"
    if prop in dataset.received:
        return dataset.received[prop], "received"
    return None


def settable_value(state, name, prop):
    """
    The value and source of a settable (or user) property, following
    inheritance: a snapshot inherits from its filesystem, a filesystem from
    its parent.

    :param str prop: canonical property name.
    :return: ``(value, source)``; ``(None, "-")`` for an unset user property,
        ``(None, "default")`` for a native one (the caller knows the default).
    """
    dataset = state.datasets[name]
    found = _explicit(dataset, prop)
    if found is not None:
        return found
    native = lookup(prop, "openzfs") or lookup(prop, ZFS_FUSE)
    if native is not None and not native.inherit:
        return None, "default"
    ancestor = parent_name(name)
    while ancestor is not None:
        found = _explicit(state.datasets[ancestor], prop)
        if found is not None:
            value = found[0]
            if (native is not None and native.kind == PATH and dataset.kind == FILESYSTEM
                    and value not in ("none", "legacy")):
                # A child's inherited mountpoint is the ancestor's plus the
                # rest of the child's name.
                value = value.rstrip("/") + name[len(ancestor):]
            return value, "inherited from %s" % (ancestor,)
        ancestor = parent_name(ancestor)
    return None, ("-" if native is None else "default")


def mountpoint(state, name):
    """
    :return: the effective ``mountpoint`` of filesystem ``name`` (a path,
        ``"none"`` or ``"legacy"``).
    """
    value, _ = settable_value(state, name, "mountpoint")
    if value is None:
        return "/" + name
    return value


def effective(state, name, prop):
    """
    :return: the effective value of a settable native property, defaults
        included (``"on"``, ``0``...).
    """
    if prop == "mountpoint":
        return mountpoint(state, name)
    value, _ = settable_value(state, name, prop)
    return lookup(prop, "openzfs").default if value is None else value


def content_bytes(content):
    """
    :return: the bytes of file data in a content map.
    """
    return sum(len(v) for v in content.values() if isinstance(v, bytes))


def _files(content):
    """The ``(path, data)`` pairs of the files in a content map."""
    return set((path, data) for path, data in content.items() if isinstance(data, bytes))


class Space(object):
    """
    Space accounting for one state, computed from the bytes the fake sees:
    an empty filesystem references a fixed overhead; a snapshot uses the
    bytes only it holds; a clone uses only what differs from its origin.

    Results are cached, so make a new one after every change.
    """

    def __init__(self, state, overhead):
        """Account for ``state``; an empty filesystem references ``overhead`` bytes."""
        self._state = state
        self._overhead = overhead
        self._used = {}

    def referenced(self, name):
        """:return: bytes referenced by ``name``."""
        return self._overhead + content_bytes(self._state.datasets[name].content)

    def by_snapshots(self, name):
        """:return: bytes held only by the snapshots of filesystem ``name``."""
        live = _files(self._state.datasets[name].content)
        held = set()
        for snap in snapshots(self._state, name):
            held |= _files(snap.content)
        return sum(len(data) for _, data in held - live)

    def by_dataset(self, name):
        """:return: bytes the live filesystem ``name`` does not share with its origin."""
        dataset = self._state.datasets[name]
        if dataset.origin is not None and dataset.origin in self._state.datasets:
            base = _files(self._state.datasets[dataset.origin].content)
            return sum(len(data) for _, data in _files(dataset.content) - base)
        return self.referenced(name)

    def by_children(self, name):
        """:return: bytes used by the children of filesystem ``name``."""
        return sum(self.used(child.name) for child in children(self._state, name))

    def used(self, name):
        """:return: the ``used`` property of ``name``."""
        if name not in self._used:
            dataset = self._state.datasets[name]
            if dataset.kind == SNAPSHOT:
                self._used[name] = self._snapshot_used(dataset)
            else:
                self._used[name] = (self.by_dataset(name) + self.by_snapshots(name)
                                    + self.by_children(name))
        return self._used[name]

    def _snapshot_used(self, snap):
        """Bytes only ``snap`` holds: in neither its predecessor nor its successor."""
        fs = parent_name(snap.name)
        chain = snapshots(self._state, fs)
        index = [s.name for s in chain].index(snap.name)
        before = _files(chain[index - 1].content) if index > 0 else set()
        after = (chain[index + 1] if index + 1 < len(chain) else self._state.datasets[fs])
        unique = _files(snap.content) - before - _files(after.content)
        return sum(len(data) for _, data in unique)

    def pool_allocated(self, pool):
        """:return: bytes allocated in ``pool``."""
        return self.used(pool)

    def available(self, name):
        """:return: the ``available`` property of filesystem ``name``."""
        pool = self._state.pools[pool_of(name)]
        room = max(pool.size - self.used(pool.name), 0)
        refquota = effective(self._state, name, "refquota")
        if refquota:
            room = min(room, max(refquota - self.referenced(name), 0))
        ancestor = name
        while ancestor is not None:
            quota = effective(self._state, ancestor, "quota")
            if quota:
                room = min(room, max(quota - self.used(ancestor), 0))
            ancestor = parent_name(ancestor)
        return room


def computed(state, space, name, prop, profile):
    """
    The value of a read-only native property.

    :return: the value (``int`` or ``str``), or ``None`` for ``-``.
    """
    dataset = state.datasets[name]
    values = {
        "type": lambda: dataset.kind,
        "name": lambda: name,
        "creation": lambda: dataset.creation,
        "guid": lambda: dataset.guid,
        "createtxg": lambda: dataset.createtxg,
        "used": lambda: space.used(name),
        "referenced": lambda: space.referenced(name),
        "available": lambda: space.available(name),
        "compressratio": lambda: "1.00x",
        "mounted": lambda: "yes" if dataset.mounted else "no",
        "origin": lambda: dataset.origin,
        "version": lambda: 4 if profile == ZFS_FUSE else 5,
        "usedbysnapshots": lambda: space.by_snapshots(name),
        "usedbydataset": lambda: space.by_dataset(name),
        "usedbychildren": lambda: space.by_children(name),
        "usedbyrefreservation": lambda: 0,
        "defer_destroy": lambda: "off",
        "userrefs": lambda: len(dataset.holds),
        "receive_resume_token": lambda: dataset.resume_token,
        "utf8only": lambda: "off",
        "normalization": lambda: "none",
        "casesensitivity": lambda: "sensitive",
    }
    return values[prop]() if prop in values else None
