# test-case-name: flocker_zfs.test.test_commands
"""
Pure builders of ``zfs``/``zpool`` argument lists and parsers of their output.

Nothing here runs a process.  Builders take validated names (see
:mod:`flocker_zfs.names`) and a :class:`~flocker_zfs.model.Capabilities`
where the implementations differ; parsers turn machine-readable output
(``-H``: tab separated, ``-p``: exact numbers) into model records and raise
:class:`~flocker_zfs.errors.UnexpectedOutput` quoting what they could not read.

Discovery uses one ``zfs get -H -p -r`` for filesystems *and* snapshots:
it is the one listing with exact numbers that zfs-fuse (no ``list -p``, no
``get -t``) and OpenZFS both have, so both profiles share one parser.
"""

import re

from pyrsistent import pvector

from .errors import UnexpectedOutput
from .model import (
    ZFS_FUSE, Dataset, PoolState, Snapshot, openzfs_capabilities, zfs_fuse_capabilities)
from .names import is_dataset_id

# Our user properties.  ``managed`` and ``dataset_id`` together mark a
# dataset as ours; nothing without both (set locally) is ever touched.
MANAGED = "flocker:managed"
DATASET_ID = "flocker:dataset_id"
OWNER = "flocker:owner"
GENERATION = "flocker:generation"
#: ``"<node uuid>:<generation>"`` while this node hands the dataset off.
HANDOFF = "flocker:handoff"
#: The owner's maximum size on a replica (which carries no ``refquota``, so
#: receives never fail on it); applied as ``refquota`` when acquired.
MAXIMUM_SIZE = "flocker:maximum_size"
#: ``"<node uuid>=<guid>,..."``: the newest snapshot each peer is known to
#: hold, so retention keeps every peer's incremental base.
BASES = "flocker:bases"

#: Properties read by discovery, in the order requested.
DISCOVERY_PROPERTIES = (
    "type", "guid", "createtxg", "used", "referenced", "refquota",
    "readonly", "mountpoint", "mounted", "origin",
    MANAGED, DATASET_ID, OWNER, GENERATION, HANDOFF, BASES, MAXIMUM_SIZE,
)

#: Read too where the implementation has resumable receives (zfs-fuse
#: rejects the whole listing if asked for a property it does not know).
RESUME_TOKEN = "receive_resume_token"


def discovery_properties(capabilities):
    """
    :return: the properties discovery reads with ``capabilities``.
    """
    if capabilities is not None and capabilities.resume_tokens:
        return DISCOVERY_PROPERTIES + (RESUME_TOKEN,)
    return DISCOVERY_PROPERTIES


# -- capabilities ------------------------------------------------------------

def version():
    """
    ``zfs version``: exists on OpenZFS >= 0.8 only; zfs-fuse answers
    "unrecognized command", which is how we tell the two apart.
    """
    return ["zfs", "version"]


_OPENZFS_VERSION = re.compile(rb"^zfs-([0-9][0-9A-Za-z.+~_-]*)\s*$", re.MULTILINE)


def is_unrecognized_command(stderr):
    """
    :return: ``True`` if ``stderr`` says the subcommand does not exist.
    """
    return b"unrecognized command" in stderr


def capabilities_from_version(stdout):
    """
    :param bytes stdout: output of ``zfs version``.
    :return: the :class:`Capabilities` of that OpenZFS version.
    :raises UnexpectedOutput: the version line is missing.
    """
    match = _OPENZFS_VERSION.search(stdout)
    if match is None:
        raise UnexpectedOutput(version(), "no 'zfs-<version>' line in %r" % (stdout[:200],), stdout)
    return openzfs_capabilities(version=match.group(1).decode("ascii"))


def legacy_capabilities():
    """
    :return: the :class:`Capabilities` assumed when ``zfs version`` does not
        exist (zfs-fuse and other pre-0.8 implementations).
    """
    return zfs_fuse_capabilities()


def receive_leaves_stale_lookups(capabilities):
    """
    Whether readers of a mounted filesystem can see it as it was before a
    ``zfs receive`` into it until it is mounted again.  zfs-fuse does not
    invalidate the kernel's FUSE caches when a receive changes a mounted
    filesystem: a name looked up before (a failed ``open`` or ``stat``)
    stays missing, a file replaced since (by a rename) stays missing, and a
    file changed in place without changing its size reads its old bytes, for
    as long as zfs-fuse's entry and attribute timeouts (an hour in Debian's
    ``/etc/zfs/zfsrc``).  OpenZFS revalidates them itself.

    :param capabilities: the detected :class:`~flocker_zfs.model.Capabilities`.
    """
    return capabilities.implementation == ZFS_FUSE


def pool_feature(pool, feature):
    """
    ``zpool get -H -o value feature@FEATURE POOL`` (OpenZFS only: zfs-fuse
    pools are version 23, without feature flags, and its ``zpool get`` has
    no ``-H``).
    """
    return ["zpool", "get", "-H", "-o", "value", "feature@" + feature, pool]


def feature_usable(stdout):
    """
    :return: ``True`` if a :func:`pool_feature` value says the feature can
        be used (``enabled`` or ``active``; not ``disabled`` or ``-``).
    """
    return stdout.strip() in (b"enabled", b"active")


# -- pool ----------------------------------------------------------------------

def pool_health(pool):
    """
    ``zpool list -H -o name,health POOL``: fails with "no such pool" when the
    pool is missing.  (zfs-fuse's ``zpool get`` has no ``-H``.)
    """
    return ["zpool", "list", "-H", "-o", "name,health", pool]


def parse_pool_health(argv, stdout, pool):
    """
    :return: the pool's health (``"ONLINE"``, ``"DEGRADED"``, ...).
    :raises UnexpectedOutput: no line for ``pool``.
    """
    for line in _lines(stdout):
        fields = line.split("\t")
        if len(fields) == 2 and fields[0] == pool:
            return fields[1]
    raise UnexpectedOutput(argv, "no health line for pool %r in %r" % (pool, stdout[:200]), stdout)


# -- properties and discovery -------------------------------------------------

def get_properties(target, recursive=True, properties=DISCOVERY_PROPERTIES):
    """
    One listing of ``properties`` for ``target`` and, with ``recursive``,
    every dataset and snapshot below it.
    """
    argv = ["zfs", "get",
            "-H",      # no header, tab separated
            "-p"]      # exact numbers (zfs-fuse has no ``list -p``)
    if recursive:
        argv.append("-r")  # children and snapshots too, in one process
    argv += ["-o", "name,property,value,source",  # source tells local from inherited
             ",".join(properties), target]
    return argv


def _lines(stdout):
    text = stdout.decode("utf-8", "surrogateescape")
    return [line for line in text.split("\n") if line != ""]


def parse_properties(argv, stdout):
    """
    :param bytes stdout: output of :func:`get_properties`.
    :return: ``{name: {property: (value, source)}}``.
    :raises UnexpectedOutput: a line without four tab-separated fields, or a
        (name, property) pair given twice (a value with an embedded newline
        could otherwise forge a line).
    """
    result = {}
    for line in _lines(stdout):
        fields = line.split("\t")
        if len(fields) < 4:
            raise UnexpectedOutput(
                argv, "expected 4 tab-separated fields, got %r" % (line,), stdout)
        name, prop, source = fields[0], fields[1], fields[-1]
        # Names and property names cannot contain tabs; a user property's
        # value can, so it is everything between them.
        value = "\t".join(fields[2:-1])
        props = result.setdefault(name, {})
        if prop in props:
            raise UnexpectedOutput(argv, "property %r of %r listed twice" % (prop, name), stdout)
        props[prop] = (value, source)
    return result


def _local(props, key):
    value, source = props.get(key, ("-", "-"))
    return value if source == "local" else None


def _integer(argv, name, props, key, default=None):
    value, _ = props.get(key, ("-", "-"))
    if value in ("-", "none", ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise UnexpectedOutput(argv, "%s of %r is not a number: %r" % (key, name, value))


def managed_id(pool, name, props):
    """
    :return: the dataset id if ``name`` is one of our datasets in ``pool``
        (a direct child named by a UUID, carrying ``flocker:managed=yes`` and a
        matching ``flocker:dataset_id``, both set locally), else ``None``.
    """
    prefix = pool + "/"
    if not name.startswith(prefix):
        return None
    child = name[len(prefix):]
    if not is_dataset_id(child):
        return None
    if props.get("type", ("-",))[0] != "filesystem":
        return None
    if _local(props, MANAGED) != "yes" or _local(props, DATASET_ID) != child:
        return None
    return child


def _writable(props, capabilities):
    value, source = props.get("readonly", ("on", "-"))
    if value != "off":
        return False
    if source == "temporary" and capabilities is not None and capabilities.mount_reports_rw:
        # zfs-fuse: "off (temporary)" on a mounted dataset means the
        # property is really "on" and writes fail.
        return False
    return True


def _recorded_size(props):
    """
    A replica's recorded owner limit (``flocker:maximum_size``); a writable
    copy's limit is its ``refquota`` alone.
    """
    if props.get("readonly", ("on",))[0] == "off" and props.get(
            "readonly", ("", "-"))[1] != "temporary":
        return None
    value = _local(props, MAXIMUM_SIZE)
    return int(value) if value and value.isdigit() and int(value) > 0 else None


def _token(props):
    value = props.get(RESUME_TOKEN, ("-",))[0]
    return None if value in ("-", "") else value


def parse_bases(value):
    """
    :param value: a ``flocker:bases`` value (``"<uuid>=<guid>,..."``) or ``None``.
    :return: ``{node uuid: guid}``; malformed entries are skipped (they
        only ever cost an extra full send, never data).
    """
    bases = {}
    for item in (value or "").split(","):
        node, _, guid = item.partition("=")
        if is_dataset_id(node) and guid.isdigit() and len(guid) <= 20:
            bases[node] = int(guid)
    return bases


def format_bases(bases):
    """
    :return: the ``flocker:bases`` value for ``{node uuid: guid}``.
    """
    return ",".join("%s=%d" % (node, bases[node]) for node in sorted(bases))


def _dataset(argv, pool, dataset_id, props, snapshots, capabilities):
    name = "%s/%s" % (pool, dataset_id)
    generation = _integer(argv, name, props, GENERATION, 0) if _local(props, GENERATION) else 0
    refquota = _integer(argv, name, props, "refquota", 0)
    mountpoint = props.get("mountpoint", ("-",))[0]
    origin = props.get("origin", ("-",))[0]
    if origin.startswith(pool + "/"):
        origin = origin[len(pool) + 1:]
    return Dataset(
        dataset_id=dataset_id,
        owner=_local(props, OWNER),
        generation=max(generation, 0),
        writable=_writable(props, capabilities),
        maximum_size=refquota or _recorded_size(props),
        used=_integer(argv, name, props, "used", 0),
        referenced=_integer(argv, name, props, "referenced", 0),
        mountpoint=None if mountpoint in ("-", "none", "legacy") else mountpoint,
        mounted=props.get("mounted", ("no",))[0] == "yes",
        origin=None if origin == "-" else origin,
        handoff=_local(props, HANDOFF),
        peer_bases=parse_bases(_local(props, BASES)),
        resume_token=_token(props),
        snapshots=pvector(sorted(snapshots, key=lambda s: s.createtxg)),
    )


def pool_state(argv, pool, stdout, capabilities=None):
    """
    Build the :class:`PoolState` of ``pool`` from a recursive
    :func:`get_properties` listing.

    :param capabilities: the implementation's
        :class:`~flocker_zfs.model.Capabilities` (how to read ``readonly``);
        ``None`` reads values literally.

    :raises UnexpectedOutput: the listing is malformed, or a number we
        rely on is not a number.
    """
    rows = parse_properties(argv, stdout)
    datasets = {}
    ignored = []
    snapshots = {}
    for name, props in rows.items():
        if "@" in name:
            fs, _, snap = name.partition("@")
            snapshots.setdefault(fs, []).append(Snapshot(
                name=snap,
                managed=_local(props, MANAGED) == "yes" or snap.startswith("flocker-"),
                guid=_integer(argv, name, props, "guid", 0),
                createtxg=_integer(argv, name, props, "createtxg", 0)))
    for name, props in rows.items():
        if "@" in name or "%" in name:
            continue
        dataset_id = managed_id(pool, name, props)
        if dataset_id is None:
            if name.startswith(pool + "/") and is_dataset_id(name[len(pool) + 1:]):
                ignored.append(name)
            continue
        datasets[dataset_id] = _dataset(argv, pool, dataset_id, props,
                                        snapshots.get(name, []), capabilities)
    return PoolState(pool=pool, datasets=datasets, ignored=sorted(ignored))


def foreign_children(pool, rows):
    """
    :param rows: :func:`parse_properties` output for a recursive listing.
    :return: names of datasets directly or indirectly under ``pool`` that
        we do not manage (snapshots and the pool root excluded).
    """
    return sorted(
        name for name, props in rows.items()
        if name.startswith(pool + "/") and "@" not in name and "%" not in name
        and managed_id(pool, name, props) is None)


# -- changes -----------------------------------------------------------------

def ownership_options(dataset_id, owner, generation, mountpoint, maximum_size):
    """
    ``-o`` options that make a new dataset ours, owned by ``owner`` and
    writable, mounted at ``mountpoint``.
    """
    options = [
        (MANAGED, "yes"),
        (DATASET_ID, dataset_id),
        (OWNER, owner),
        (GENERATION, str(generation)),
        # Explicit, so it is writable even when the pool root is read-only
        # (which protects replicas from the moment they are received).
        ("readonly", "off"),
        ("mountpoint", mountpoint),
    ]
    if maximum_size is not None:
        options.append(("refquota", str(maximum_size)))
    argv = []
    for key, value in options:
        argv += ["-o", "%s=%s" % (key, value)]
    return argv


def create(name, options):
    """
    ``zfs create -o ... NAME``: one atomic command, so a dataset never
    exists without the properties that mark it as ours.
    """
    return ["zfs", "create"] + list(options) + [name]


def clone(snapshot, name, options):
    """
    ``zfs clone -o ... SNAPSHOT NAME``: a writable dataset sharing the
    snapshot's blocks, ours from the start.
    """
    return ["zfs", "clone"] + list(options) + [snapshot, name]


def set_property(name, key, value):
    """
    ``zfs set KEY=VALUE NAME``: one property per call, since zfs-fuse
    accepts only one.
    """
    return ["zfs", "set", "%s=%s" % (key, value), name]


def inherit_property(name, key):
    """
    ``zfs inherit KEY NAME``: removes a local (user) property.
    """
    return ["zfs", "inherit", key, name]


def snapshot(name, managed=True):
    """
    ``zfs snapshot [-o flocker:managed=yes] NAME@SNAP``; the property marks
    snapshots we took, so retention never prunes anyone else's.
    """
    argv = ["zfs", "snapshot"]
    if managed:
        argv += ["-o", "%s=yes" % (MANAGED,)]
    return argv + [name]


def mount(name):
    """``zfs mount NAME``."""
    return ["zfs", "mount", name]


def unmount(name):
    """
    ``zfs unmount NAME``: needed before destroy on zfs-fuse, which answers
    "dataset is busy" when destroying a mounted filesystem.
    """
    return ["zfs", "unmount", name]


def destroy(name, recursive=False):
    """
    ``zfs destroy [-r] NAME``.  ``-r`` takes the dataset's own snapshots;
    never ``-R``, which would also destroy other datasets (clones).
    """
    argv = ["zfs", "destroy"]
    if recursive:
        argv.append("-r")
    return argv + [name]


def rename(old, new):
    """``zfs rename OLD NEW``."""
    return ["zfs", "rename", old, new]


def rollback(snapshot_name):
    """
    ``zfs rollback SNAPSHOT``: only to the newest snapshot (no ``-r``, which
    would destroy newer snapshots).
    """
    return ["zfs", "rollback", snapshot_name]


def send(snapshot_full, base_full=None, compressed=False):
    """
    ``zfs send [-i BASE] SNAPSHOT``: one snapshot, as a full stream or as an
    incremental from ``base_full`` (``-i``, not ``-I``: only our replication
    snapshots travel, not every snapshot in between).  Never ``-R`` or ``-p``:
    properties (mountpoint!) stay local.

    :param compressed: add ``-c -L -e`` (OpenZFS at both ends): blocks travel
        as stored, large blocks and embedded data kept.
    """
    argv = ["zfs", "send"]
    if compressed:
        argv += ["-c", "-L", "-e"]
    if base_full is not None:
        argv += ["-i", base_full]
    return argv + [snapshot_full]


def send_estimate(snapshot_full, base_full=None):
    """
    ``zfs send -n -P [-i BASE] SNAPSHOT``: the stream's size, without
    sending (OpenZFS; zfs-fuse has no ``-P``).
    """
    argv = ["zfs", "send", "-n", "-P"]
    if base_full is not None:
        argv += ["-i", base_full]
    return argv + [snapshot_full]


def parse_estimate(argv, stdout):
    """
    :return: the ``size`` line's number of bytes.
    :raises UnexpectedOutput: no ``size`` line.
    """
    for line in _lines(stdout):
        fields = line.split("\t")
        if len(fields) == 2 and fields[0] == "size" and fields[1].isdigit():
            return int(fields[1])
    raise UnexpectedOutput(argv, "no 'size' line in %r" % (stdout[:200],), stdout)


def send_resume(token):
    """
    ``zfs send -t TOKEN``: continue an interrupted resumable receive.
    """
    return ["zfs", "send", "-t", token]


def send_resume_dry_run(token):
    """
    ``zfs send -n -v -t TOKEN``: print what the token would send, so the
    target can be checked before any byte leaves (a forged token could name
    another dataset).
    """
    return ["zfs", "send", "-n", "-v", "-t", token]


_TONAME = re.compile(r"^\s*toname = (.+?)\s*$", re.MULTILINE)


def parse_resume_target(argv, stdout):
    """
    :return: the full snapshot name a resume token would send.
    :raises UnexpectedOutput: no ``toname`` line.
    """
    match = _TONAME.search(stdout.decode("utf-8", "surrogateescape"))
    if match is None:
        raise UnexpectedOutput(argv, "no 'toname' in %r" % (stdout[:300],), stdout)
    return match.group(1)


_TOKEN = re.compile(r"\A[0-9a-f]+-[0-9a-f]+-[0-9a-f]+-[0-9a-f]+\Z")


def is_resume_token(value):
    """
    :return: ``True`` if ``value`` looks like a ``receive_resume_token``
        (``<version>-<checksum>-<length>-<hex payload>``), safe as one argv
        element.
    """
    return isinstance(value, str) and len(value) < 16384 and _TOKEN.match(value) is not None


#: Name prefixes of the snapshots replication takes; only these are ever
#: pruned (a user's ``flocker-<time>-<random>`` snapshot is kept).
REPLICATION_PREFIXES = ("flocker-push-", "flocker-pre-", "flocker-handoff-")


def is_replication_snapshot(name):
    """
    :return: ``True`` for a snapshot replication took (and may prune).
    """
    return name.startswith(REPLICATION_PREFIXES)


def hold_tag(peer_uuid):
    """
    :return: the hold tag protecting ``peer_uuid``'s incremental base (never
        starts with ``-``).
    """
    return "flocker-%s" % (peer_uuid,)


def hold(tag, snapshot_full):
    """``zfs hold TAG SNAPSHOT``: a held snapshot cannot be destroyed."""
    return ["zfs", "hold", tag, snapshot_full]


def release(tag, snapshot_full):
    """``zfs release TAG SNAPSHOT``."""
    return ["zfs", "release", tag, snapshot_full]


def size_value(maximum_size):
    """
    :return: the ``refquota`` value for ``maximum_size`` (``"none"`` for no limit).
    """
    return "none" if maximum_size is None else str(maximum_size)
