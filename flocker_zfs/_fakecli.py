# test-case-name: flocker_zfs.test.test_fakezfs
"""
Command-line plumbing and the read-only commands of the fake ZFS.

:func:`parse` splits argv with GNU ``getopt`` rules (options may follow
operands), failing like ``zfs`` does (exit 2, message, usage).
:class:`ReadCommands` answers ``zfs get``, ``zfs list``, ``zfs holds``,
``zfs version`` and ``zpool list`` from a :class:`FakeState`, formatting the
output exactly as ``zfs`` does with and without ``-H``.
"""

import time

from . import _fakestate as st
from ._fakeprops import (
    DATE, INDEX, NUMBER, RATIO, SIZE, ZFS_FUSE, format_value, is_user_property, lookup,
    nicenum, visible)
from ._fakeusage import usage

#: What OpenZFS 2.1.11 (Debian 12's zfsutils-linux) prints for ``zfs version``.
OPENZFS_VERSION = b"zfs-2.1.11-1+deb12u1\nzfs-kmod-2.1.11-1+deb12u1\n"


class Fail(Exception):
    """
    A command ends with a non-zero status; raised anywhere inside a command.

    :ivar int status: the exit status.
    :ivar bytes stderr: what it printed on stderr.
    :ivar bytes stdout: what it printed on stdout before failing.
    """

    def __init__(self, status, stderr, stdout=b""):
        """Keep the status and output; ``stderr`` may be given as ``str``."""
        Exception.__init__(self, status, stderr)
        self.status = status
        self.stderr = stderr if isinstance(stderr, bytes) else stderr.encode("utf-8")
        self.stdout = stdout


def usage_error(profile, program, command, message):
    """
    :return: a :class:`Fail` with status 2 and ``message`` + usage on stderr.
    """
    return Fail(2, usage(profile, program, command, message))


def parse(profile, program, command, args, optstring, real=""):
    """
    Parse options the way glibc's permuting ``getopt`` does.

    :param str optstring: the options the fake implements (``"rHpo:"``).
    :param str real: further options the real command has but the fake
        does not emulate; using one fails with a FakeZFS-specific message
        rather than pretending the option does not exist.
    :return: ``(options, operands)``: a list of ``(letter, argument)`` and
        the remaining arguments in order.
    :raises Fail: on an unknown option or a missing option argument.
    """
    options, operands = [], []
    args = list(args)
    while args:
        arg = args.pop(0)
        if arg == "--":
            operands.extend(args)
            break
        if not arg.startswith("-") or arg == "-":
            operands.append(arg)
            continue
        position = 1
        while position < len(arg):
            letter = arg[position]
            position += 1
            index = optstring.find(letter)
            if letter == ":" or index == -1:
                if letter in real.replace(":", ""):
                    raise Fail(2, "FakeZFS does not emulate '%s %s -%s'\n"
                               % (program, command, letter))
                raise usage_error(profile, program, command, "invalid option '%s'" % (letter,))
            if optstring[index + 1:index + 2] == ":":
                if position < len(arg):
                    value, position = arg[position:], len(arg)
                elif args:
                    value = args.pop(0)
                else:
                    raise usage_error(profile, program, command,
                                      "missing argument for '%s' option" % (letter,))
                options.append((letter, value))
            else:
                options.append((letter, None))
    return options, operands


def flags(options):
    """
    :return: the set of option letters given.
    """
    return set(letter for letter, _ in options)


def values(options, letter):
    """
    :return: the arguments given to option ``letter``, in order.
    """
    return [value for opt, value in options if opt == letter]


def table(rows, headers, right, scripted):
    """
    Format rows like ``zfs list``/``zfs get``: tab-separated with ``-H``,
    else padded columns under a header, two spaces apart, numbers
    right-aligned and the last left-aligned column unpadded.

    :return: ``bytes``.
    """
    if scripted:
        return "".join("\t".join(row) + "\n" for row in rows).encode("utf-8")
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(headers)]
    lines = []
    for row in [headers] + rows:
        cells = []
        for i, cell in enumerate(row):
            if right[i]:
                cells.append(cell.rjust(widths[i]))
            elif i == len(row) - 1:
                cells.append(cell)
            else:
                cells.append(cell.ljust(widths[i]))
        lines.append("  ".join(cells) + "\n")
    return "".join(lines).encode("utf-8")


_GET_COLUMNS = ("name", "property", "value", "received", "source")
_SOURCES = {"local": "local", "default": "default", "inherited": "inherited",
            "temporary": "temporary", "received": "received", "none": "-"}
_TYPES = {"filesystem": (st.FILESYSTEM,), "snapshot": (st.SNAPSHOT,), "volume": (),
          "all": (st.FILESYSTEM, st.SNAPSHOT)}


class ReadCommands(object):
    """
    The commands that only read state; mixed into
    :class:`flocker_zfs._fakezfs.FakeZFS`, which provides ``profile``,
    ``_state`` and ``_sync()``.
    """

    def _open(self, name, errors):
        """
        Look up a dataset named on the command line, printing (into
        ``errors``) libzfs's message when it does not exist.
        """
        if name in self._state.datasets:
            return self._state.datasets[name]
        errors.append("cannot open '%s': dataset does not exist\n" % (name,))
        return None

    def _collect(self, names, recursive, depth, kinds, errors):
        """
        The datasets a ``get``/``list`` command covers, sorted and with
        duplicates kept (as libzfs does).
        """
        if not names:
            names, recursive = [n for n in self._state.pools], True
        found = []
        for name in names:
            dataset = self._open(name, errors)
            if dataset is None:
                continue
            if dataset.kind not in kinds and not (recursive or depth is not None):
                if (dataset.kind == st.FILESYSTEM and kinds == (st.SNAPSHOT,)
                        and self.profile != ZFS_FUSE):
                    # OpenZFS: "-t snapshot FS" means FS's snapshots.
                    found.extend(st.snapshots(self._state, name))
                    continue
                errors.append("cannot open '%s': operation not applicable to datasets of "
                              "this type\n" % (name,))
                continue
            if recursive or depth is not None:
                base = name.count("/") + 1
                for member in st.subtree(self._state, name):
                    level = member.name.split("@")[0].count("/") + 1 - base
                    level += 1 if member.kind == st.SNAPSHOT else 0
                    if member.kind not in kinds:
                        continue
                    if depth is None or level <= depth:
                        found.append(member)
            else:
                found.append(dataset)
        return sorted(found, key=st.sort_key)

    def _property(self, space, dataset, prop, parsable):
        """
        :return: ``(value text, source text, received text)`` of one property.
        """
        if is_user_property(prop):
            value, source = st.settable_value(self._state, dataset.name, prop)
            received = dataset.received.get(prop, "-")
            return ("-" if value is None else value), source, received
        info = lookup(prop, self.profile)
        snapshot = dataset.kind == st.SNAPSHOT
        if (info.applies == "fs" and snapshot) or (info.applies == "snap" and not snapshot):
            return "-", "-", "-"
        if not info.settable:
            raw = st.computed(self._state, space, dataset.name, info.name, self.profile)
            return format_value(info, raw, parsable), "-", "-"
        raw, source = st.settable_value(self._state, dataset.name, info.name)
        if raw is None:
            raw = st.effective(self._state, dataset.name, info.name)
        if (self.profile == "zfs-fuse" and info.name == "readonly" and raw == "on"
                and getattr(dataset, "mounted", False)):
            # zfs-fuse mounts everything rw at the FUSE level and enforces
            # read-only itself; `zfs get` then reports the mount option.
            return "off", "temporary", "-"
        received = dataset.received.get(info.name)
        received = "-" if received is None else format_value(info, received, parsable)
        return format_value(info, raw, parsable), source, received

    def _check_props(self, text, command):
        """Check a comma-separated property list; :return: canonical names."""
        props = text.split(",")
        for prop in props:
            if prop != "all" and lookup(prop, self.profile) is None \
                    and not is_user_property(prop):
                raise usage_error(self.profile, "zfs", command,
                                  "bad property list: invalid property '%s'" % (prop,))
        return [lookup(p, self.profile).name if lookup(p, self.profile) else p for p in props]

    def _types(self, options, command, default):
        """The dataset kinds selected by ``-t`` (``default`` without it)."""
        kinds = default
        for text in values(options, "t"):
            kinds = ()
            for word in text.split(","):
                if word not in _TYPES and not (word == "bookmark" and self.profile != ZFS_FUSE):
                    raise usage_error(self.profile, "zfs", command, "invalid type '%s'" % (word,))
                kinds += _TYPES.get(word, ())
        return kinds

    def _zfs_get(self, args):
        """``zfs get [-rHp] [-d max] [-o fields] [-s sources] [-t types] props [name...]``"""
        fuse = self.profile == ZFS_FUSE
        options, operands = parse(self.profile, "zfs", "get", args,
                                  ":d:o:s:rHp" if fuse else ":d:o:s:rt:Hp")
        columns = ["name", "property", "value", "source"]
        for text in values(options, "o"):
            columns = list(_GET_COLUMNS if text == "all" else text.split(","))
            if fuse and text == "all":
                columns.remove("received")
            for column in columns:
                if column not in _GET_COLUMNS or (fuse and column == "received"):
                    raise usage_error(self.profile, "zfs", "get",
                                      "invalid column name '%s'" % (column,))
        sources = None
        for text in values(options, "s"):
            sources = set()
            for word in text.split(","):
                if word not in _SOURCES:
                    raise usage_error(self.profile, "zfs", "get", "invalid source '%s'" % (word,))
                sources.add(_SOURCES[word])
        kinds = self._types(options, "get", (st.FILESYSTEM, st.SNAPSHOT))
        depth = values(options, "d")
        depth = int(depth[-1]) if depth else None
        if not operands:
            raise usage_error(self.profile, "zfs", "get", "missing property argument")
        props = self._check_props(operands[0], "get")
        self._sync()
        errors = []
        datasets = self._collect(operands[1:], "r" in flags(options), depth, kinds, errors)
        space = st.Space(self._state, st.OVERHEAD[self.profile])
        parsable = "p" in flags(options)
        rows = []
        for dataset in datasets:
            names = props
            if "all" in props:
                names = [p.name for p in visible(self.profile)
                         if p.applies != ("fs" if dataset.kind == st.SNAPSHOT else "snap")]
                names += sorted(p for p in set(dataset.local) | set(dataset.received) |
                                self._inherited_user(dataset.name) if is_user_property(p))
            for prop in names:
                value, source, received = self._property(space, dataset, prop, parsable)
                kind = "inherited" if source.startswith("inherited") else source
                if sources is not None and _SOURCES.get(kind, kind) not in sources:
                    continue
                cells = {"name": dataset.name, "property": prop, "value": value,
                         "source": source, "received": received}
                rows.append([cells[c] for c in columns])
        out = table(rows, [c.upper() for c in columns], [False] * len(columns),
                    "H" in flags(options))
        if errors:
            raise Fail(1, "".join(errors), out)
        return out

    def _inherited_user(self, name):
        """The user properties set on the ancestors of ``name``."""
        found = set()
        ancestor = st.parent_name(name)
        while ancestor is not None:
            ancestor_ds = self._state.datasets[ancestor]
            found |= set(p for p in list(ancestor_ds.local) + list(ancestor_ds.received)
                         if is_user_property(p))
            ancestor = st.parent_name(ancestor)
        return found

    def _zfs_list(self, args):
        """``zfs list [-rH] [-p] [-d max] [-o props] [-t types] [-s|-S prop] [name...]``"""
        fuse = self.profile == ZFS_FUSE
        options, operands = parse(self.profile, "zfs", "list", args,
                                  "d:o:rHs:S:t:" if fuse else "HS:d:o:prs:t:")
        columns = ["name", "used", "available", "referenced", "mountpoint"]
        for text in values(options, "o"):
            columns = self._check_props(text, "list")
        keys = []
        for letter, value in options:
            if letter in "sS":
                if lookup(value, self.profile) is None and not is_user_property(value):
                    raise usage_error(self.profile, "zfs", "list",
                                      "invalid property '%s'" % (value,))
                keys.append((lookup(value, self.profile).name
                             if lookup(value, self.profile) else value, letter == "S"))
        explicit = "t" in flags(options)
        kinds = self._types(options, "list", (st.FILESYSTEM,))
        if not explicit:
            # A snapshot named on the command line is listed anyway.
            kinds = (st.FILESYSTEM, st.SNAPSHOT) if any("@" in o for o in operands) else kinds
        depth = values(options, "d")
        depth = int(depth[-1]) if depth else None
        self._sync()
        errors = []
        datasets = self._collect(operands, "r" in flags(options), depth, kinds, errors)
        space = st.Space(self._state, st.OVERHEAD[self.profile])
        parsable = "p" in flags(options)
        for prop, descending in reversed(keys):
            datasets.sort(key=lambda d: self._sort_value(space, d, prop), reverse=descending)
        rows = [[d.name if c == "name" else self._property(space, d, c, parsable)[0]
                 for c in columns] for d in datasets]
        if not rows and not errors and "H" not in flags(options):
            return 0, b"", b"no datasets available\n"
        headers, right = [], []
        for column in columns:
            info = lookup(column, self.profile)
            headers.append(info.column if info else column.upper())
            right.append(bool(info) and not info.hidden and
                         info.kind in (SIZE, NUMBER, INDEX, DATE, RATIO))
        out = table(rows, headers, right, "H" in flags(options))
        if errors:
            raise Fail(1, "".join(errors), out)
        return out

    def _sort_value(self, space, dataset, prop):
        """A sort key for ``-s``/``-S``: numbers numerically, ``-`` last."""
        value = self._property(space, dataset, prop, True)[0]
        info = lookup(prop, self.profile)
        if info is not None and info.kind in (SIZE, NUMBER, DATE):
            return (0, int(value)) if value.isdigit() else (1, 0)
        return (0, value) if value != "-" else (1, "")

    def _zfs_holds(self, args):
        """``zfs holds [-rHp] snapshot...`` (OpenZFS; zfs-fuse cannot list holds)."""
        if self.profile == ZFS_FUSE:
            # zfs-fuse 0.7 hands "holds" to a Python helper it does not ship.
            raise Fail(255, b"", b"internal error: /usr/lib/zfs/pyzfs.py not found\n")
        options, operands = parse(self.profile, "zfs", "holds", args, "rHp")
        if not operands:
            raise usage_error(self.profile, "zfs", "holds", "missing snapshot argument")
        rows, errors = [], []
        for name in operands:
            if "@" not in name:
                raise usage_error(self.profile, "zfs", "holds", "'%s' is not a snapshot" % (name,))
            dataset = self._open(name, errors)
            if dataset is None:
                continue
            for tag in sorted(dataset.holds):
                when = dataset.holds[tag]
                stamp = str(when) if "p" in flags(options) else _hold_time(when)
                rows.append([name, tag, stamp])
        out = table(rows, ["NAME", "TAG", "TIMESTAMP"], [False] * 3, "H" in flags(options))
        if errors:
            raise Fail(1, "".join(errors), out)
        return out

    def _zfs_version(self, args):
        """``zfs version`` (OpenZFS only)."""
        if self.profile == ZFS_FUSE:
            raise usage_error(self.profile, "zfs", None, "unrecognized command 'version'")
        return OPENZFS_VERSION

    def _zpool_list(self, args):
        """``zpool list [-H] [-p] [-o props] [pool...]``"""
        fuse = self.profile == ZFS_FUSE
        options, operands = parse(self.profile, "zpool", "list", args,
                                  ":Ho:" if fuse else ":gHLpPvo:T:")
        names = {"name": "NAME", "size": "SIZE", "allocated": "ALLOC", "free": "FREE",
                 "capacity": "CAP", "dedupratio": "DEDUP", "health": "HEALTH",
                 "altroot": "ALTROOT", "guid": "GUID"}
        aliases = {"alloc": "allocated", "cap": "capacity", "dedup": "dedupratio"}
        columns = ["name", "size", "allocated", "free", "capacity", "dedupratio", "health",
                   "altroot"]
        for text in values(options, "o"):
            columns = [aliases.get(c, c) for c in text.split(",")]
            for column in columns:
                if column not in names:
                    raise usage_error(self.profile, "zpool", "list",
                                      "bad property list: invalid property '%s'" % (column,))
        self._sync()
        space = st.Space(self._state, st.OVERHEAD[self.profile])
        errors, rows = [], []
        for name in operands or sorted(self._state.pools):
            pool = self._state.pools.get(name)
            if pool is None:
                errors.append("cannot open '%s': no such pool\n" % (name,))
                continue
            used = space.pool_allocated(name)
            exact = "p" in flags(options)
            number = (lambda n: str(n)) if exact else nicenum
            cells = {"name": name, "size": number(pool.size), "allocated": number(used),
                     "free": number(max(pool.size - used, 0)),
                     "capacity": ("%d" if exact else "%d%%") % (used * 100 // pool.size),
                     "dedupratio": "1.00x", "health": pool.health, "altroot": "-",
                     "guid": str(pool.guid)}
            rows.append([cells[c] for c in columns])
        right = [c in ("size", "allocated", "free", "capacity", "dedupratio") for c in columns]
        out = table(rows, [names[c] for c in columns], right, "H" in flags(options))
        if errors:
            raise Fail(1, "".join(errors), out)
        return out

    def _zpool_get(self, args):
        """``zpool get props pool...`` (OpenZFS: ``[-Hp] [-o fields]``)."""
        fuse = self.profile == ZFS_FUSE
        # zfs-fuse's "zpool get" parses no options: "-H" is a property name.
        options, operands = ([], list(args)) if fuse else parse(
            self.profile, "zpool", "get", args, ":Hpo:")
        columns = ["name", "property", "value", "source"]
        for text in values(options, "o"):
            columns = text.split(",")
        if len(operands) < 2:
            raise usage_error(self.profile, "zpool", "get", "")
        names = ([p for p in _POOL_PROPS if p != "name"] if operands[0] == "all"
                 else operands[0].split(","))
        for prop in names:
            if prop not in _POOL_PROPS and not (prop.startswith("feature@") and not fuse):
                raise usage_error(self.profile, "zpool", "get",
                                  "bad property list: invalid property '%s'" % (prop,))
        self._sync()
        space = st.Space(self._state, st.OVERHEAD[self.profile])
        rows, errors = [], []
        for name in operands[1:]:
            pool = self._state.pools.get(name)
            if pool is None:
                errors.append("cannot open '%s': no such pool\n" % (name,))
                continue
            for prop in names:
                value, source = self._pool_property(space, pool, prop, "p" in flags(options))
                cells = {"name": name, "property": prop, "value": value, "source": source}
                rows.append([cells[c] for c in columns])
        if "H" in flags(options) or not rows:
            out = table(rows, columns, [False] * len(columns), True)
        else:
            # The value column is as wide as the properties' headers, not
            # their values (a guid overflows it).
            headers = [c.upper() for c in columns]
            widths = {"name": max([4] + [len(n) for n in operands[1:]]),
                      "property": max([8] + [len(p) for p in names]),
                      "value": max([5] + [len(_POOL_PROPS[p][2]) for p in names
                                          if p in _POOL_PROPS]),
                      "source": 0}
            lines = []
            for row in [headers] + rows:
                cells = [cell.ljust(widths[c]) for c, cell in zip(columns, row)]
                lines.append("  ".join(cells).rstrip() + "\n")
            out = "".join(lines).encode("utf-8")
        if errors:
            raise Fail(1, "".join(errors), out)
        return out

    def _pool_property(self, space, pool, prop, exact):
        """:return: ``(value, source)`` of one pool property."""
        if prop.startswith("feature@"):
            return "enabled", "local"
        used = space.pool_allocated(pool.name)
        number = str if exact else nicenum
        computed = {
            "name": pool.name, "size": number(pool.size), "allocated": number(used),
            "free": number(max(pool.size - used, 0)), "health": pool.health,
            "capacity": "%d%%" % (used * 100 // pool.size), "guid": str(pool.guid),
            "version": "23" if self.profile == ZFS_FUSE else "-",
        }
        if prop in computed:
            return computed[prop], _POOL_PROPS[prop][0]
        return _POOL_PROPS[prop][1], _POOL_PROPS[prop][0]


#: Pool properties: name -> (source, default value, column header), in the
#: order ``zpool get all`` prints them.
_POOL_PROPS = dict((name, (source, default, header)) for name, source, default, header in (
    ("size", "-", None, "SIZE"), ("capacity", "-", None, "CAP"),
    ("altroot", "default", "-", "ALTROOT"), ("health", "-", None, "HEALTH"),
    ("guid", "default", None, "GUID"), ("version", "default", None, "VERSION"),
    ("bootfs", "default", "-", "BOOTFS"), ("delegation", "default", "on", "DELEGATION"),
    ("autoreplace", "default", "off", "REPLACE"), ("cachefile", "default", "-", "CACHEFILE"),
    ("failmode", "default", "wait", "FAILMODE"),
    ("listsnapshots", "default", "off", "LISTSNAPS"),
    ("autoexpand", "default", "off", "EXPAND"), ("dedupditto", "default", "0", "DEDUPDITTO"),
    ("dedupratio", "-", "1.00x", "DEDUP"), ("free", "-", None, "FREE"),
    ("allocated", "-", None, "ALLOC"), ("ashift", "default", "0", "ASHIFT"),
    ("name", "-", None, "NAME")))


def _hold_time(seconds):
    """
    Format a hold's time like ``zfs holds`` (strftime ``%a %b %e %H:%M %Y``).
    """
    t = time.localtime(seconds)
    return time.strftime("%a %b ", t) + "%2d" % (t.tm_mday,) + time.strftime(" %H:%M %Y", t)
