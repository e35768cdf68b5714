# test-case-name: flocker_zfs.test.test_fakezfs
"""
The fake ZFS commands that change state: ``create``, ``set``, ``inherit``,
``snapshot``, ``destroy``, ``rename``, ``clone``, ``rollback``, ``hold`` and
``release`` (``mount`` and ``unmount`` live with the mount machinery in
:mod:`flocker_zfs._fakezfs`).

Each checks its arguments in the order libzfs does, so the first error
reported is the one real ZFS reports, then changes the state.  Messages
follow zfs-fuse 0.7 and OpenZFS 2.1 (``self.profile``).
"""

from pyrsistent import pmap

from . import _fakestate as st
from ._fakecli import Fail, flags, parse, usage_error, values
from ._fakeprops import BadValue, ZFS_FUSE, is_user_property, lookup, parse_value


class WriteCommands(object):
    """
    Mixed into :class:`flocker_zfs._fakezfs.FakeZFS`, which provides the
    state, the mount machinery (``_mount``, ``_unmount``...) and ``profile``.
    """

    @property
    def _fuse(self):
        """``True`` when emulating zfs-fuse."""
        return self.profile == ZFS_FUSE

    def _exists(self, name):
        """Whether a dataset (or snapshot) called ``name`` exists."""
        return name in self._state.datasets

    def _need(self, name, kinds=(st.FILESYSTEM, st.SNAPSHOT)):
        """
        Open a dataset named on the command line, or fail as ``zfs_open`` does.

        :param kinds: the dataset types the command accepts.
        """
        if self._fuse:
            if st.name_problem(name, None, self.profile) is not None:
                raise Fail(1, "cannot open '%s': invalid dataset name\n" % (name,))
        else:
            if "@" in name and st.SNAPSHOT not in kinds:
                problem = "snapshot delimiter '@' is not expected here"
            elif "@" not in name and kinds == (st.SNAPSHOT,):
                problem = "missing '@' delimiter in snapshot name"
            else:
                problem = st.name_problem(name, None, self.profile)
            if problem is not None:
                raise Fail(1, "cannot open '%s': %s\n" % (name, problem))
        if not self._exists(name):
            raise Fail(1, "cannot open '%s': dataset does not exist\n" % (name,))
        dataset = self._state.datasets[name]
        if dataset.kind not in kinds:
            raise Fail(1, "cannot open '%s': operation not applicable to datasets of this "
                       "type\n" % (name,))
        return dataset

    def _props(self, options, target, is_snapshot, verb="create"):
        """
        Parse and check ``-o k=v`` options.

        :return: ``dict`` of canonical name -> value.
        """
        props = {}
        for text in values(options, "o"):
            if "=" not in text:
                raise Fail(1, "missing '=' for -o option\n" if self._fuse
                           else "missing '=' for property=value argument\n")
            key, value = text.split("=", 1)
            if key in props:
                raise Fail(1, "property '%s' specified multiple times\n" % (key,))
            props[key] = value
        checked = {}
        for key, value in props.items():
            prefix = "cannot %s '%s'" % (verb, target)
            if is_user_property(key):
                checked[key] = value
                continue
            info = lookup(key, self.profile)
            if info is None:
                raise Fail(1, "%s: invalid property '%s'\n" % (prefix, key))
            try:
                checked[info.name] = parse_value(info, value, is_snapshot)
            except BadValue as error:
                raise Fail(1, "%s: %s\n" % (prefix, error))
        return checked

    def _check_new(self, name, verb="create", parents=False):
        """Check a new filesystem's name and parent the way ``check_parents`` does."""
        if "/" not in name and "@" not in name:
            raise Fail(1, "cannot %s '%s': missing dataset name\n" % (verb, name))
        problem = st.name_problem(name, st.FILESYSTEM, self.profile)
        if problem is not None:
            raise Fail(1, "cannot %s '%s': %s\n" % (verb, name, problem))
        pool = st.pool_of(name)
        if pool not in self._state.pools:
            raise Fail(1, "cannot create '%s': no such pool '%s'\n" % (name, pool))
        parent = st.parent_name(name)
        if not parents and not self._exists(parent):
            raise Fail(1, "cannot create '%s': parent does not exist\n" % (name,))

    def _new_filesystem(self, name, local=(), content=pmap(), origin=None):
        """Add a filesystem record; :return: it."""
        dataset = st.FakeDataset(name=name, kind=st.FILESYSTEM, guid=self._guid(),
                                 createtxg=self._txg(), creation=self._now(),
                                 local=pmap(dict(local)), content=content, origin=origin)
        self._put(dataset)
        return dataset

    def _create_parents(self, name):
        """Create the missing ancestors of ``name`` (``-p``), mounting them."""
        missing = []
        parent = st.parent_name(name)
        while parent is not None and not self._exists(parent):
            missing.append(parent)
            parent = st.parent_name(parent)
        for ancestor in reversed(missing):
            self._new_filesystem(ancestor)
            if self._can_automount(ancestor):
                self._mount(ancestor)

    def _mount_new(self, name, created_message):
        """Mount a new filesystem if it should be, adding ``created_message`` to a failure."""
        if self._can_automount(name):
            try:
                self._mount(name)
            except Fail as failure:
                raise Fail(1, failure.stderr + created_message.encode("utf-8"))

    def _zfs_create(self, args):
        """``zfs create [-p] [-u] [-o k=v]... filesystem``"""
        options, operands = parse(self.profile, "zfs", "create", args,
                                  ":po:" if self._fuse else ":po:u",
                                  "sb:V:" if self._fuse else "Pnvsb:V:")
        if not operands:
            raise usage_error(self.profile, "zfs", "create", "missing filesystem argument")
        if len(operands) > 1:
            raise usage_error(self.profile, "zfs", "create", "too many arguments")
        name = operands[0]
        props = self._props(options, name, False)
        parents = "p" in flags(options)
        if parents and self._exists(name):
            return b""
        self._check_new(name, parents=parents)
        if self._exists(name):
            raise Fail(1, "cannot create '%s': dataset already exists\n" % (name,))
        overhead = st.OVERHEAD[self.profile]
        if any(props.get(q) and props[q] < overhead for q in ("refquota", "quota")):
            raise Fail(1, "cannot create '%s': out of space\n" % (name,))
        if parents:
            self._create_parents(name)
        self._new_filesystem(name, props)
        if "u" not in flags(options):
            self._mount_new(name, "filesystem successfully created, but not mounted\n")
        return b""

    def _zfs_set(self, args):
        """``zfs set k=v name...`` (OpenZFS: ``zfs set k=v... name...``)."""
        options, operands = parse(self.profile, "zfs", "set", args, "")
        if not operands:
            raise usage_error(self.profile, "zfs", "set", "missing property=value argument")
        if self._fuse:
            assignments, names = operands[:1], operands[1:]
            if "=" not in operands[0] or operands[0].endswith("="):
                raise usage_error(self.profile, "zfs", "set",
                                  "missing value in property=value argument")
        else:
            count = 0
            while count < len(operands) and "=" in operands[count]:
                count += 1
            assignments, names = operands[:count], operands[count:]
            if any("=" in n for n in names):
                raise usage_error(self.profile, "zfs", "set", "invalid argument order")
            if not assignments:
                raise Fail(1, "missing '=' for property=value argument\n")
        if not names:
            raise usage_error(self.profile, "zfs", "set",
                              "missing dataset name" if self._fuse else "missing dataset name(s)")
        pairs = []
        for text in assignments:
            key, value = text.split("=", 1)
            if key in [k for k, _ in pairs]:
                raise Fail(1, "property '%s' specified multiple times\n" % (key,))
            pairs.append((key, value))
        errors = []
        for name in names:
            try:
                self._set_one(name, pairs)
            except Fail as failure:
                errors.append(failure.stderr.decode("utf-8"))
        if errors:
            raise Fail(1, "".join(errors))
        return b""

    def _set_one(self, name, pairs):
        """Set ``pairs`` on one dataset, all checked before any is applied."""
        dataset = self._need(name)
        prefix = "cannot set property for '%s'" % (name,)
        checked = {}
        for key, value in pairs:
            if is_user_property(key):
                checked[key] = value
                continue
            info = lookup(key, self.profile)
            if info is None:
                raise Fail(1, "%s: invalid property '%s'\n" % (prefix, key))
            try:
                checked[info.name] = parse_value(info, value, dataset.kind == st.SNAPSHOT)
            except BadValue as error:
                raise Fail(1, "%s: %s\n" % (prefix, error))
        self._sync()
        space = st.Space(self._state, st.OVERHEAD[self.profile])
        for key, measure in (("refquota", space.referenced), ("quota", space.used)):
            if checked.get(key) and checked[key] < measure(name):
                raise Fail(1, "%s: size is less than current used or reserved space\n"
                           % (prefix,))
        self._change(name, lambda d: d.set(local=d.local.update(checked)), set(checked))

    def _inheritors(self, name, prop):
        """
        :return: ``name`` and the filesystems below it that inherit ``prop``
            through it (the datasets a change of ``prop`` on ``name`` moves).
        """
        found = []
        for dataset in st.subtree(self._state, name):
            if dataset.kind != st.FILESYSTEM:
                continue
            between = dataset.name
            while between != name and prop not in self._state.datasets[between].local:
                between = st.parent_name(between)
            if between == name:
                found.append(dataset.name)
        return found

    def _change(self, name, update, keys):
        """
        Apply ``update`` to ``name``'s record, unmounting and remounting what
        a ``mountpoint`` change moves, as libzfs's "changelist" does.
        """
        changed = update(self._state.datasets[name])
        moving = []
        was_legacy = False
        if "mountpoint" in keys:
            moving = self._inheritors(name, "mountpoint")
            was_legacy = st.mountpoint(self._state, name) in ("none", "legacy")
        mounted = self._unmount_all_of(moving)
        if "canmount" in keys and changed.local.get("canmount") == "off":
            self._unmount_all_of([name])
        # The record again: unmounting changed its content and mounted flag.
        self._put(update(self._state.datasets[name]))
        errors = []
        self._remount(moving if was_legacy else mounted, errors)
        self._apply_readonly([d.name for d in st.subtree(self._state, name)])
        if errors:
            raise Fail(1, "".join(errors))

    def _zfs_inherit(self, args):
        """``zfs inherit [-r] property name...``"""
        options, operands = parse(self.profile, "zfs", "inherit", args, "r", "S")
        if not operands:
            raise usage_error(self.profile, "zfs", "inherit", "missing property argument")
        if len(operands) < 2:
            raise usage_error(self.profile, "zfs", "inherit", "missing dataset argument")
        prop = operands[0]
        info = lookup(prop, self.profile)
        if info is None and not is_user_property(prop):
            raise usage_error(self.profile, "zfs", "inherit", "invalid property '%s'" % (prop,))
        if info is not None:
            if not info.settable:
                raise Fail(1, "%s property is read-only\n" % (prop,))
            if not info.inherit:
                extra = ("use 'zfs set %s=none' to clear\n" % (prop,)
                         if info.name in ("quota", "refquota", "reservation", "refreservation")
                         else "")
                if self.profile != ZFS_FUSE:
                    extra += ("use 'zfs inherit -S %s' to revert to received value\n"
                              % (prop,))
                raise Fail(1, "'%s' property cannot be inherited\n%s" % (prop, extra))
            prop = info.name
        errors = []
        for name in operands[1:]:
            try:
                self._need(name)
            except Fail as failure:
                errors.append(failure.stderr.decode("utf-8"))
                continue
            targets = ([d.name for d in st.subtree(self._state, name)]
                       if "r" in flags(options) else [name])
            for target in targets:
                if prop in self._state.datasets[target].local:
                    self._change(target, lambda d: d.set(local=d.local.remove(prop)), {prop})
        if errors:
            raise Fail(1, "".join(errors))
        return b""

    def _zfs_snapshot(self, args):
        """``zfs snapshot [-r] [-o k=v]... fs@snap`` (OpenZFS: several)."""
        options, operands = parse(self.profile, "zfs", "snapshot", args, "ro:")
        if not operands:
            raise usage_error(self.profile, "zfs", "snapshot", "missing snapshot argument")
        if self._fuse and len(operands) > 1:
            raise usage_error(self.profile, "zfs", "snapshot", "too many arguments")
        verb = "snapshot" if self._fuse else "create snapshot"
        for name in operands:
            if "@" not in name:
                if self._fuse:
                    raise Fail(1, "cannot snapshot '%s': missing '@' delimiter in snapshot "
                               "name\n" % (name,))
                raise usage_error(self.profile, "zfs", "snapshot", "")
        props = self._props(options, operands[0], True, "snapshot")
        names = []
        for name in operands:
            fs, snap = name.split("@", 1)
            if not self._exists(fs) or self._state.datasets[fs].kind != st.FILESYSTEM:
                message = "cannot open '%s': dataset does not exist" % (fs,)
                if self._fuse:
                    raise Fail(1, message + "\n")
                raise usage_error(self.profile, "zfs", "snapshot", message)
            problem = st.name_problem(name, st.SNAPSHOT, self.profile)
            if problem is not None:
                raise Fail(1, "cannot %s '%s': %s\n" % (verb, name, problem))
            if "r" in flags(options):
                names += ["%s@%s" % (d.name, snap) for d in st.subtree(self._state, fs)
                          if d.kind == st.FILESYSTEM]
            else:
                names.append(name)
        # OpenZFS adds a line when a multi-snapshot request fails as a whole.
        tail = "" if self._fuse or len(names) == 1 else "no snapshots were created\n"
        for name in names:
            if name in self._state.datasets:
                raise Fail(1, "cannot create snapshot '%s': dataset already exists\n%s"
                           % (name, tail))
        self._sync()
        space = st.Space(self._state, st.OVERHEAD[self.profile])
        for pool in set(st.pool_of(n) for n in names):
            if space.pool_allocated(pool) > self._state.pools[pool].size:
                raise Fail(1, "cannot create snapshot '%s': out of space\n%s"
                           % (names[0], tail))
        txg = self._txg()
        for name in names:
            fs = name.split("@", 1)[0]
            self._put(st.FakeDataset(name=name, kind=st.SNAPSHOT, guid=self._guid(),
                                     createtxg=txg, creation=self._now(), local=pmap(props),
                                     content=self._state.datasets[fs].content))
        return b""

    def _zfs_destroy(self, args):
        """``zfs destroy [-rR] filesystem`` or ``zfs destroy [-rR] fs@snap``."""
        options, operands = parse(self.profile, "zfs", "destroy", args, "rRf",
                                  "d" if self._fuse else "dnpv")
        if not operands:
            raise usage_error(self.profile, "zfs", "destroy", "missing path argument")
        if len(operands) > 1:
            raise usage_error(self.profile, "zfs", "destroy", "too many arguments")
        name = operands[0]
        given = flags(options)
        recursive, clones = bool(given & set("rR")), "R" in given
        if "@" in name:
            fs = name.split("@", 1)[0]
            self._need(fs, (st.FILESYSTEM,))
            if not self._exists(name):
                if self._fuse:
                    raise Fail(1, "cannot open '%s': dataset does not exist\n" % (name,))
                raise Fail(1, "could not find any snapshots to destroy; check snapshot names.\n")
        else:
            self._need(name, (st.FILESYSTEM,))
            if "/" not in name:
                raise Fail(1, "cannot destroy '%s': operation does not apply to pools\n"
                           "use 'zfs destroy -r %s' to destroy all datasets in the pool\n"
                           "use 'zpool destroy %s' to destroy the pool itself\n"
                           % (name, name, name))
        target = self._state.datasets[name]
        kind = target.kind
        listed = []
        # Real ZFS lists these in no fixed order; the fake's is oldest first.
        for dependent in st.dependents(self._state, name):
            direct = dependent.name.startswith(name + "/") or dependent.name.startswith(name + "@")
            if direct and recursive:
                continue
            if not direct and (clones or (not recursive and kind != st.SNAPSHOT)):
                continue
            if not listed:
                listed.append("cannot destroy '%s': %s has %s\nuse '%s' to destroy the "
                              "following datasets:\n" % (
                                  name, kind, "children" if direct else "dependent clones",
                                  "-r" if direct else "-R"))
            listed.append(dependent.name + "\n")
        if listed:
            raise Fail(1, "".join(listed))
        doomed = [d.name for d in st.dependents(self._state, name)] + [name]
        self._destroy(doomed, force=self._fuse and "f" in given)
        return b""

    def _destroy(self, doomed, force=False):
        """Destroy ``doomed`` (dependents first), unmounting what is mounted."""
        for name in doomed:
            dataset = self._state.datasets[name]
            if dataset.holds:
                if self._fuse:
                    raise Fail(1, "cannot destroy '%s': dataset is busy\n" % (name,))
                raise Fail(1, "cannot destroy snapshot %s: dataset is busy\n" % (name,))
            if name in self._busy and not dataset.mounted and not force:
                raise Fail(1, "cannot destroy '%s': dataset is busy\n" % (name,))
        self._unmount_all_of(doomed, force)
        for name in doomed:
            self._state = self._state.without(name)
            self._busy.discard(name)

    def _zfs_rename(self, args):
        """``zfs rename [-p] old new`` (snapshots: ``fs@a fs@b`` or ``fs@a b``)."""
        options, operands = parse(self.profile, "zfs", "rename", args, "p",
                                  "r" if self._fuse else "rfu")
        if not operands:
            raise usage_error(self.profile, "zfs", "rename", "missing source dataset argument")
        if len(operands) < 2:
            raise usage_error(self.profile, "zfs", "rename", "missing target dataset argument")
        if len(operands) > 2:
            raise usage_error(self.profile, "zfs", "rename", "too many arguments")
        old, new = operands
        source = self._need(old)
        if source.kind == st.SNAPSHOT and ("@" not in new or new.startswith("@")):
            new = old.split("@", 1)[0] + ("@" if "@" not in new else "") + new
        # The kernel's EEXIST is reported against the source name by both.
        exists = "cannot rename '%s': dataset already exists\n" % (old,)
        if source.kind == st.SNAPSHOT:
            if new.split("@", 1)[0] != old.split("@", 1)[0]:
                raise Fail(1, "cannot rename to '%s': snapshots must be part of same "
                           "dataset\n" % (new,))
            problem = st.name_problem(new, st.SNAPSHOT, self.profile)
            if problem is not None:
                raise Fail(1, "cannot rename to '%s': %s\n" % (new, problem))
            if new in self._state.datasets:
                raise Fail(1, exists)
            self._renamed({old: new})
            return b""
        self._check_new(new, "rename to", parents="p" in flags(options))
        if st.pool_of(new) != st.pool_of(old):
            raise Fail(1, "cannot rename to '%s': datasets must be within same pool\n" % (new,))
        if new.startswith(old + "/"):
            raise Fail(1, "cannot rename to '%s': New dataset name cannot be a descendant of "
                       "current dataset name\n" % (new,))
        if self._exists(new):
            raise Fail(1, exists)
        if "p" in flags(options):
            self._create_parents(new)
        members = [d.name for d in st.subtree(self._state, old)]
        mounted = self._unmount_all_of(members)
        self._renamed(dict((m, new + m[len(old):]) for m in members))
        errors = []
        self._remount([new + m[len(old):] for m in mounted], errors)
        if errors:
            raise Fail(1, "".join(errors))
        return b""

    def _renamed(self, mapping):
        """Move datasets to new names, fixing clones' origins and busy marks."""
        for old, new in mapping.items():
            self._state = self._state.without(old).with_dataset(
                self._state.datasets[old].set(name=new))
            if old in self._busy:
                self._busy.discard(old)
                self._busy.add(new)
        for dataset in list(self._state.datasets.values()):
            if dataset.origin in mapping:
                self._put(dataset.set(origin=mapping[dataset.origin]))

    def _zfs_clone(self, args):
        """``zfs clone [-p] [-o k=v]... fs@snap filesystem``"""
        options, operands = parse(self.profile, "zfs", "clone", args, "po:")
        if not operands:
            raise usage_error(self.profile, "zfs", "clone", "missing source dataset argument")
        if len(operands) < 2:
            raise usage_error(self.profile, "zfs", "clone", "missing target dataset argument")
        if len(operands) > 2:
            raise usage_error(self.profile, "zfs", "clone", "too many arguments")
        origin, name = operands
        source = self._need(origin, (st.SNAPSHOT,))
        parents = "p" in flags(options)
        self._check_new(name, parents=parents)
        if self._exists(name):
            raise Fail(1, "cannot create '%s': dataset already exists\n" % (name,))
        props = self._props(options, name, False)
        if parents:
            self._create_parents(name)
        self._new_filesystem(name, props, source.content, origin)
        self._mount_new(name, "")
        return b""

    def _zfs_rollback(self, args):
        """``zfs rollback [-rR] fs@snap``"""
        options, operands = parse(self.profile, "zfs", "rollback", args, "rRf")
        if not operands:
            raise usage_error(self.profile, "zfs", "rollback", "missing dataset argument")
        if len(operands) > 1:
            raise usage_error(self.profile, "zfs", "rollback", "too many arguments")
        name = operands[0]
        snap = self._need(name, (st.SNAPSHOT,))
        fs = name.split("@", 1)[0]
        newer = [s for s in st.snapshots(self._state, fs) if s.createtxg > snap.createtxg]
        given = flags(options)
        if newer and not given & set("rR"):
            if self._fuse:
                head = ("more recent snapshots exist\nuse '-r' to force deletion of the "
                        "following snapshots:\n")
            else:
                head = ("more recent snapshots or bookmarks exist\nuse '-r' to force deletion "
                        "of the following snapshots and bookmarks:\n")
            raise Fail(1, "cannot rollback to '%s': %s%s" % (
                name, head, "".join(s.name + "\n" for s in newer)))
        doomed = []
        for later in newer:
            doomed += [d.name for d in st.dependents(self._state, later.name)]
        if doomed and "R" not in given:
            raise Fail(1, "cannot rollback to '%s': clones of previous snapshots exist\n"
                       "use '-R' to force deletion of the following clones and dependents:\n%s"
                       % (name, "".join(n + "\n" for n in doomed)))
        self._destroy(doomed + [s.name for s in newer])
        self._set_content(fs, snap.content)
        return b""

    def _holds_target(self, verb, tag, name, errors):
        """The snapshot a hold/release names, or ``None`` after adding the error."""
        if "@" not in name:
            errors.append("'%s' is not a snapshot\n" % (name,))
            return None
        fs = name.split("@", 1)[0]
        if not self._fuse and not self._exists(fs):
            errors.append("cannot open '%s': dataset does not exist\n" % (fs,))
            return None
        if not self._exists(name):
            errors.append("%s: dataset does not exist\n" % (self._hold_prefix(verb, tag, name),))
            return None
        return self._state.datasets[name]

    def _hold_prefix(self, verb, tag, name):
        """The ``cannot hold ...`` part of a hold/release error message."""
        if verb == "hold":
            return ("cannot hold '%s'" if self._fuse else "cannot hold snapshot '%s'") % (name,)
        if self._fuse:
            return "cannot release '%s' from '%s'" % (tag, name)
        return "cannot release hold from snapshot '%s'" % (name,)

    def _zfs_hold(self, args):
        """``zfs hold tag fs@snap...``"""
        return self._hold_or_release("hold", args)

    def _zfs_release(self, args):
        """``zfs release tag fs@snap...``"""
        return self._hold_or_release("release", args)

    def _hold_or_release(self, verb, args):
        """``zfs hold``/``zfs release``: each snapshot is handled on its own."""
        options, operands = parse(self.profile, "zfs", verb, args, "", "r")
        if len(operands) < 2:
            raise usage_error(self.profile, "zfs", verb, "")
        tag, errors = operands[0], []
        for name in operands[1:]:
            dataset = self._holds_target(verb, tag, name, errors)
            if dataset is None:
                continue
            prefix = self._hold_prefix(verb, tag, name)
            if verb == "hold":
                if tag in dataset.holds:
                    errors.append("%s: tag already exists on this dataset\n" % (prefix,))
                    continue
                self._put(dataset.set(holds=dataset.holds.set(tag, self._now())))
            else:
                if tag not in dataset.holds:
                    errors.append("%s: no such tag on this dataset\n" % (prefix,))
                    continue
                self._put(dataset.set(holds=dataset.holds.remove(tag)))
        if errors:
            raise Fail(1, "".join(errors))
        return b""
