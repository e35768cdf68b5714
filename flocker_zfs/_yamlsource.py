# test-case-name: flocker_zfs.test.test_yamlsource
"""
Reading an operator's YAML file (``agent.yml``, a deployment file) into
plain values, with one-line :class:`~flocker_zfs.errors.ConfigError`
messages that name the file and say where the problem is (those about its
content start with the file's name).

- :func:`read_source`: the bytes of a small regular file (a directory, a
  device, a pipe or a huge file is refused, never read or waited on), which
  is :func:`flocker_zfs._files.read_bounded`;
- :func:`decode_text`: UTF-8 (a byte order mark allowed), naming the line
  and column of a bad byte;
- :func:`load_yaml`: one document through ``yaml.safe_load``'s loader,
  refusing repeated keys (YAML silently keeps the last one) and naming the
  line and column of malformed YAML or of a value the safe loader cannot
  build;
- :func:`freeze`: the document as pyrsistent values;
- :func:`shown`, :func:`kind_of`, :func:`clip`, :func:`one_line` (from
  :mod:`flocker_zfs._files`): values quoted in messages, short and on one
  line.

Nothing here has side effects beyond reading the one file asked for.
"""

import datetime
import reprlib
from collections.abc import Mapping, Sequence, Set

import yaml
from pyrsistent import pmap, pset, pvector

from ._files import one_line, read_bounded
from .errors import ConfigError


# -- showing values in messages ------------------------------------------------

class _Repr(reprlib.Repr):
    """
    Short reprs, built without formatting the whole value. Python refuses to
    format an int of more than 4300 digits, and YAML can contain one.
    """

    def __init__(self):
        reprlib.Repr.__init__(self)
        self.maxstring = 60
        self.maxother = 60
        self.maxlevel = 2
        self.maxlist = self.maxtuple = self.maxdict = self.maxset = 4

    def repr_int(self, value, level):
        if value.bit_length() > 128:
            return "<integer of %d bits>" % (value.bit_length(),)
        return reprlib.Repr.repr_int(self, value, level)


_REPR = _Repr()


def clip(text, limit=100):
    """
    :return: ``text`` on one line, cut to about ``limit`` characters.
    """
    text = one_line(text)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def shown(value):
    """
    :return: a short, one-line rendering of a YAML value for a message.
        Scalars are spelled as in YAML (``true``, ``null``), and everything
        is cut to about 80 characters.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return clip(_REPR.repr(value), 80)


def kind_of(value):
    """
    :return: what ``value`` is, in YAML's words (``"a string"``, ``"a
        boolean"``, ``"a list"``, ...).
    """
    kinds = [
        (bool, "a boolean"), (int, "an integer"), (float, "a number"), (str, "a string"),
        (bytes, "binary data"), (datetime.datetime, "a timestamp"),
        (datetime.date, "a date"), (Mapping, "a mapping"), (Set, "a set"),
        (Sequence, "a list"),
    ]
    if value is None:
        return "null"
    for kind, words in kinds:
        if isinstance(value, kind):
            return words
    return "a %s" % (type(value).__name__,)


def config_error(source, message, fix=None, kind=ConfigError):
    """
    :return: a ``kind`` error (not raised) whose message starts with
        ``source``, all on one line.
    """
    return kind(one_line("%s: %s" % (source, message)),
                fix=None if fix is None else one_line(fix))


# -- the file ----------------------------------------------------------------------

#: The bytes of a small regular file, or a one-line error naming it: the
#: one bounded reader, :func:`flocker_zfs._files.read_bounded`.
read_source = read_bounded


def decode_text(data, source):
    """
    :param bytes data: the file's content.
    :return: ``data`` as text. A leading byte order mark is dropped.
    :raises ConfigError: it is not UTF-8 (naming the line and column of the
        first bad byte).
    """
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        before = data[:error.start]
        line = before.count(b"\n") + 1
        line_start = before.rfind(b"\n") + 1
        column = len(before[line_start:].decode("utf-8-sig", "replace")) + 1
        raise config_error(
            source, "not UTF-8 text (byte 0x%02x at line %d, column %d)"
            % (data[error.start], line, column),
            fix="Save the file as UTF-8.")


# -- the YAML document ---------------------------------------------------------------

class _Loader(yaml.SafeLoader):
    """
    ``yaml.safe_load``'s loader, with the same tags. The only change is that a
    value the safe constructor cannot build, and reports with a plain Python
    exception, now fails with a ``ConstructorError`` that has the value's
    position. Examples are the date ``2001-13-45``, ``!!bool maybe`` and an
    integer too long to convert.
    """

    def construct_object(self, node, deep=False):
        try:
            return yaml.SafeLoader.construct_object(self, node, deep=deep)
        except yaml.YAMLError:
            raise
        except Exception as error:
            reason = str(error)
            if "integer string conversion" in reason:
                reason = "too many digits"
            raise yaml.constructor.ConstructorError(
                None, None, "cannot read %s as %s (%s)" % (
                    shown(node.value) if isinstance(node.value, str) else "this value",
                    node.tag.rsplit(":", 1)[-1], clip(reason)),
                node.start_mark)


def position(mark):
    """
    :return: ``"line L, column C"`` (from 1) of a YAML mark.
    """
    return "line %d, column %d" % (mark.line + 1, mark.column + 1)


def _malformed(source, error, text, format_fix):
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        problem = error.problem or error.context or "malformed YAML"
        if error.context and error.problem and error.context_mark is not None:
            problem = "%s (%s at %s)" % (problem, error.context, position(error.context_mark))
        where = (position(mark) + ": ") if mark is not None else ""
    elif isinstance(error, yaml.reader.ReaderError):
        before = text[:error.position]
        line = before.count("\n") + 1
        column = len(before) - (before.rfind("\n") + 1) + 1
        where = "line %d, column %d: " % (line, column)
        problem = "unacceptable character #x%04x: %s" % (error.character, error.reason)
    else:
        where, problem = "", str(error)
    return config_error(source, "malformed YAML at %s%s" % (where, clip(problem, 200)),
                        fix=("Correct the YAML at that position. " + format_fix).strip())


def every_mapping(root):
    """
    The default for :func:`load_yaml`'s ``unique``: the keys of every
    mapping of the document must be unique.

    :return: ``[(mapping node, None, prefix)]`` for each mapping node under
        ``root`` (each once, however many aliases share it), ``prefix``
        being its path as messages name keys (``datasets[0].``; ``?`` for a
        key that is not a scalar).
    """
    found, seen, todo = [], set(), [(root, "")]
    while todo:
        node, path = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            found.append((node, None, path + "." if path else ""))
            for key_node, value_node in node.value:
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else "?"
                child = "%s.%s" % (path, key) if path else key
                todo += [(key_node, child), (value_node, child)]
        elif isinstance(node, yaml.SequenceNode):
            todo.extend((item, "%s[%d]" % (path, i)) for i, item in enumerate(node.value))
    return found


def _duplicate(mapping, only=None):
    """
    :return: ``(key, mark, first mark)`` for the first key repeated in a
        mapping node, or ``None``. Merge keys (``<<``) may repeat keys on
        purpose, so they are not counted.
    """
    seen = {}
    for key_node, _ in mapping.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
            continue
        if only is not None and key_node.value not in only:
            continue
        identity = (key_node.tag, key_node.value)
        if identity in seen:
            return key_node.value, key_node.start_mark, seen[identity]
        seen[identity] = key_node.start_mark
    return None


def _check_duplicates(checks, source):
    for node, only, prefix in checks:
        found = _duplicate(node, only)
        if found is not None:
            key, mark, first = found
            raise config_error(
                source, "%s: duplicate key %s (first at %s)" % (
                    position(mark), clip(prefix + key, 80), position(first)),
                fix="Keep one of them: YAML would silently use only the last.")


#: What :func:`load_yaml` returns for a text holding no document.
NOTHING = object()


def load_yaml(text, source, unique=every_mapping, format_fix=""):
    """
    Read one YAML document with the safe loader's tags.

    :param str text: the YAML.
    :param str source: the file's name, for messages.
    :param unique: ``callable(root node) -> [(mapping node, keys or None,
        prefix)]``: the mappings whose keys (all, or only those in ``keys``)
        must not repeat, and how to name them (``prefix + key``). Default
        :func:`every_mapping`.
    :param str format_fix: appended to the fix of a malformed document
        (where the format is described).
    :return: the document as plain Python values, or :data:`NOTHING` if
        the text holds none (empty, or only comments).
    :raises ConfigError: malformed YAML (an escape out of range too), a
        value the safe loader cannot build, a repeated key (each naming line
        and column), or nesting too deep to read.
    """
    loader = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
        if node is None:
            return NOTHING
        _check_duplicates(unique(node), source)
        return loader.construct_document(node)
    except yaml.YAMLError as error:
        raise _malformed(source, error, text, format_fix) from None
    except ConfigError:
        raise
    except (ValueError, OverflowError) as error:
        # PyYAML's scanner turns an escape such as "\UFFFFFFFF" into a
        # character without checking it is one.
        raise config_error(
            source, "malformed YAML at %s: cannot read this scalar (%s; an escape "
            "sequence out of range?)" % (position(loader.get_mark()), clip(str(error))),
            fix=("Correct the YAML at that position. " + format_fix).strip()) from None
    except RecursionError:
        raise config_error(source, "the YAML is nested too deeply to read",
                           fix=("Flatten the structure. " + format_fix).strip())
    finally:
        if loader is not None:
            loader.dispose()


def freeze(value, source, format_fix=""):
    """
    :return: ``value`` made immutable: pmap, pvector, pset. A value that an
        alias shares is frozen once.
    :raises ConfigError: an alias inside its own anchor (a recursive
        document), or nesting too deep.
    """
    done = {}
    active = set()

    def freeze_item(item):
        if not isinstance(item, (dict, list, set, tuple)):
            return item
        ident = id(item)
        if ident in done:
            return done[ident]
        if ident in active:
            raise config_error(source, "the YAML document contains itself through an alias "
                                       "(an anchor used inside its own value)",
                               fix="Remove the recursive alias.")
        active.add(ident)
        if isinstance(item, dict):
            result = pmap({key: freeze_item(val) for key, val in item.items()})
        elif isinstance(item, set):
            result = pset(item)
        elif isinstance(item, tuple):
            result = tuple(freeze_item(val) for val in item)
        else:
            result = pvector(freeze_item(val) for val in item)
        active.discard(ident)
        done[ident] = result
        return result
    try:
        return freeze_item(value)
    except RecursionError:
        raise config_error(source, "the YAML is nested too deeply to read",
                           fix=("Flatten the structure. " + format_fix).strip())
