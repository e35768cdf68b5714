"""
Tests for :mod:`flocker_zfs._ssh`.
"""

import shlex

from hypothesis import given, strategies as st
from pyrsistent import InvariantException
from twisted.trial.unittest import SynchronousTestCase

from .._ssh import (
    CIPHERS, SSHConfig, canonical_host, parse_peer, ssh_argv, validate_host, validate_path,
    validate_port, validate_user)
from ..errors import ConfigError, InvalidName

CONFIG = SSHConfig(identity="/etc/flocker/id_rsa_flocker",
                   known_hosts="/etc/flocker/known_hosts")

#: Scenario 11 of the reliability notes, and friends.
HOSTILE_HOSTS = [
    "-oProxyCommand=touch /tmp/pwned", "-oProxyCommand=touch", "a;id", "$(id)", "`id`",
    "host name", "a" * 254, "[::1]:22", "[::1]", "::1%eth0", "fe80::1%$(id)", "", " ",
    "host\n", "host\0", "root@host", "host:22", "-h", "-", "a-.b", "-a.b", "a..b", ".a",
    "a.", "h\u0430st", "a" * 64 + ".example", "1.2.3.999", "127.1", "x/y", "*", "?",
    "h'st", 'h"st', "h\\st", "%h", None, 5, b"host",
]

GOOD_HOSTS = ["127.0.0.1", "10.0.0.254", "::1", "fe80::1", "2001:db8::42",
              "::ffff:192.0.2.1", "node-1", "node-1.example.com", "A1", "x" * 63,
              ".".join(["a" * 63] * 3) + "." + "b" * 61]


class ValidateHostTests(SynchronousTestCase):
    """
    Tests for :func:`validate_host`.
    """

    def test_good(self):
        """
        IP literals and RFC 1123 host names are accepted unchanged.
        """
        for host in GOOD_HOSTS:
            self.assertEqual(validate_host(host), host)

    def test_longest(self):
        """
        A 253-character host name is accepted; 254 characters are not.
        """
        name = ".".join(["a" * 63] * 3) + "." + "b" * 61
        self.assertEqual(len(name), 253)
        validate_host(name)
        self.assertRaises(InvalidName, validate_host, name + "b")

    def test_hostile(self):
        """
        Every hostile address is refused with ``InvalidName`` quoting it.
        """
        for host in HOSTILE_HOSTS:
            with self.assertRaises(InvalidName, msg=repr(host)) as caught:
                validate_host(host)
            self.assertIn("invalid peer address", str(caught.exception))

    @given(st.text())
    def test_never_an_option_or_metacharacter(self, text):
        """
        No accepted address starts with ``-`` or holds whitespace or a shell
        metacharacter.
        """
        try:
            validate_host(text)
        except InvalidName:
            return
        self.assertFalse(text.startswith("-"))
        self.assertFalse(set(text) & set(" \t\n\r\0;&|$`'\"\\()<>*?[]{}!#~%@/="))


class CanonicalHostTests(SynchronousTestCase):
    """
    Tests for :func:`canonical_host`.
    """

    def test_same_host(self):
        """
        Spellings of one address or host name have one canonical form.
        """
        for spellings in [("::1", "0:0::1", "0000:0000:0000:0000:0000:0000:0000:0001"),
                          ("2001:db8::42", "2001:DB8:0:0::42"),
                          ("192.0.2.1", "::ffff:192.0.2.1", "::FFFF:c000:0201"),
                          ("node-b.example", "Node-B.Example", "NODE-B.EXAMPLE")]:
            self.assertEqual(len(set(canonical_host(text) for text in spellings)), 1,
                             spellings)

    def test_different_hosts(self):
        """
        Different hosts stay different.
        """
        hosts = ["::1", "127.0.0.1", "::2", "node-b", "node-b.example", "10.0.0.1"]
        self.assertEqual(len(set(canonical_host(host) for host in hosts)), len(hosts))


class ParsePeerTests(SynchronousTestCase):
    """
    Tests for :func:`parse_peer`, the peer of a command line.
    """

    def test_forms(self):
        """
        ``HOST`` takes the default port; ``HOST:PORT`` and ``[IPV6]:PORT``
        their own; a bare IPv6 address, whose colons are its own, and
        ``[IPV6]`` take the default.
        """
        cases = {"node-b": ("node-b", 2200), "node-b:2222": ("node-b", 2222),
                 "10.0.0.2:22": ("10.0.0.2", 22), "[::1]:2222": ("::1", 2222),
                 "[fd00::2]": ("fd00::2", 2200), "fd00::2": ("fd00::2", 2200),
                 "[node-b]:65535": ("node-b", 65535)}
        for text, expected in cases.items():
            self.assertEqual(parse_peer(text, 2200), expected, text)
        self.assertEqual(parse_peer("node-b"), ("node-b", 22))

    def test_hostile(self):
        """
        Every hostile address is refused with ``InvalidName``, whose fix
        shows the forms a peer takes.
        """
        for host in HOSTILE_HOSTS:
            if host in ("[::1]:22", "[::1]", "host:22"):
                continue    # peers, not bare addresses
            with self.assertRaises(InvalidName, msg=repr(host)) as caught:
                parse_peer(host)
            self.assertIn("HOST:PORT", caught.exception.fix)

    def test_bad_ports(self):
        """
        A port that is empty, not ASCII digits or out of range is refused,
        quoting the peer; so is a bad default port.
        """
        for text in ["h:", "h:0", "h:65536", "h:99999999999999999999", "h:22x", "h:-1",
                     "h: 22", "h:\u0663", "h:\u00b2", "[::1]:", "[::1]:0", "[::1]x",
                     "[::1", "[::1]]:22", "h:+22"]:
            with self.assertRaises(InvalidName, msg=repr(text)) as caught:
                parse_peer(text)
            self.assertIn(repr(text), str(caught.exception))
        self.assertRaises(ConfigError, parse_peer, "node-b", 0)

    def test_not_text(self):
        """
        Something other than a string is refused with ``InvalidName``.
        """
        for value in (None, 22, b"node-b"):
            self.assertRaises(InvalidName, parse_peer, value)

    @given(st.text(max_size=300), st.integers(1, 65535))
    def test_only_valid_results(self, text, default):
        """
        Whatever the text, the result is a host :func:`validate_host`
        accepts and a port from 1 to 65535, or ``InvalidName``.
        """
        try:
            host, port = parse_peer(text, default)
        except InvalidName:
            return
        self.assertEqual(validate_host(host), host)
        self.assertEqual(validate_port(port), port)


class SSHConfigTests(SynchronousTestCase):
    """
    Tests for :class:`SSHConfig`.
    """

    def test_defaults(self):
        """
        Port 22, user root, 10 s connect timeout, keep-alives every 10 s for
        3 rounds, default ciphers and no multiplexing.
        """
        self.assertEqual(
            (CONFIG.port, CONFIG.user, CONFIG.connect_timeout, CONFIG.server_alive_interval,
             CONFIG.server_alive_count, CONFIG.ciphers, CONFIG.control_dir),
            (22, "root", 10, 10, 3, None, None))

    def test_paths_mandatory(self):
        """
        The identity and known_hosts must be given.
        """
        self.assertRaises(InvariantException, SSHConfig, identity="/k")

    def test_bad_paths(self):
        """
        Relative, unnormalised or ssh-special paths are refused, for every
        path field.
        """
        for bad in ["id", "./id", "/a/../id", "/a//id", "/a/", "/a b", "/a%d", "/~/x",
                    "/a\nb", '/a"b', "/a'b", "/a\\b", "/a,b", "/a=b", "/a#b", "", None]:
            for name in ("identity", "known_hosts", "control_dir"):
                fields = {"identity": "/i", "known_hosts": "/k", name: bad}
                if bad is None and name == "control_dir":
                    continue
                with self.assertRaises(InvalidName, msg=(name, bad)):
                    SSHConfig(**fields)

    def test_set_validates(self):
        """
        Changing a field validates it too.
        """
        self.assertRaises(InvalidName, CONFIG.set, identity="relative")
        self.assertRaises(ConfigError, CONFIG.set, port=0)

    def test_ports(self):
        """
        Ports are whole numbers from 1 to 65535; nothing else.
        """
        for good in (1, 22, 65535):
            self.assertEqual(CONFIG.set(port=good).port, good)
        for bad in (0, 65536, -1, True, "22", "22; rm -rf /", 22.0, None):
            self.assertRaises(ConfigError, CONFIG.set, port=bad)
            self.assertRaises(ConfigError, validate_port, bad)

    def test_users(self):
        """
        The user is a plain Unix user name.
        """
        self.assertEqual(validate_user("flocker_sync-2"), "flocker_sync-2")
        for bad in ("Root", "-oX", "a b", "a;id", "", "1abc", "root@x", "x" * 33, None):
            self.assertRaises(InvalidName, CONFIG.set, user=bad)

    def test_timeouts(self):
        """
        Timeouts and counts are whole numbers from 1 to 3600.
        """
        for name in ("connect_timeout", "server_alive_interval", "server_alive_count"):
            self.assertEqual(getattr(CONFIG.set(**{name: 1}), name), 1)
            for bad in (0, -1, 3601, 1.5, "10", True, None):
                self.assertRaises(ConfigError, CONFIG.set, **{name: bad})

    def test_ciphers(self):
        """
        Ciphers come from the whitelist, one or several separated by commas.
        """
        for good in sorted(CIPHERS) + ["aes128-gcm@openssh.com,aes128-ctr", None]:
            self.assertEqual(CONFIG.set(ciphers=good).ciphers, good)
        for bad in ("none", "3des-cbc", "aes128-cbc", "", "aes128-ctr,", "aes128-ctr -oX", 5):
            self.assertRaises(ConfigError, CONFIG.set, ciphers=bad)

    def test_control_dir_length(self):
        """
        A control directory too long for a socket path is refused.
        """
        CONFIG.set(control_dir="/run/flocker/ssh")
        self.assertRaises(InvalidName, CONFIG.set, control_dir="/" + "d" * 60)

    def test_special_characters_named(self):
        """
        The characters ssh would misread are named visibly (a space is
        invisible in the quoted path), and the fix says what to avoid.
        """
        for path, named in [("/tmp/a b", "a space"), ("/a,b=c", "a comma (,), an equals sign (=)"),
                            ("/a%d~", "a percent sign (%), a tilde (~)"),
                            ("/a'b\"c\\d#", "a single quote ('), a double quote (\"), "
                                            "a backslash (\\), a hash (#)")]:
            with self.assertRaises(InvalidName) as caught:
                validate_path("ssh identity", path)
            self.assertEqual(caught.exception.summary(),
                             "invalid ssh identity %r: ssh would misread %s in it"
                             % (path, named))
            self.assertIn("without spaces, quotes, backslashes or any of % ~ , = #",
                          caught.exception.fix)

    def test_control_characters_named(self):
        """
        Control characters are named as well.
        """
        with self.assertRaises(InvalidName) as caught:
            validate_path("ssh known_hosts", "/a\tb")
        self.assertIn("contains control characters (a tab, shown as \\t)",
                      caught.exception.summary())

    def test_validate_path_names_setting(self):
        """
        The message names the setting and the value.
        """
        with self.assertRaises(InvalidName) as caught:
            validate_path("ssh identity", "id_rsa")
        self.assertIn("ssh identity 'id_rsa'", str(caught.exception))


def _options(argv):
    """
    :return: the ``-o`` values of an ssh argv.
    """
    return [argv[i + 1] for i, arg in enumerate(argv[:-2]) if arg == "-o"]


class SSHArgvTests(SynchronousTestCase):
    """
    Tests for :func:`ssh_argv`.
    """

    def test_shape(self):
        """
        The argv pins every option, ends with ``-p``, ``-l``, ``--``, the host
        and the joined remote command.
        """
        argv = ssh_argv(CONFIG, "node-1", ["flocker-zfs", "peer", "hello"])
        self.assertEqual(argv, [
            "ssh", "-F", "/dev/null", "-i", "/etc/flocker/id_rsa_flocker",
            "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "UserKnownHostsFile=/etc/flocker/known_hosts",
            "-o", "GlobalKnownHostsFile=/dev/null", "-o", "ConnectTimeout=10",
            "-o", "ServerAliveInterval=10", "-o", "ServerAliveCountMax=3",
            "-o", "ForwardAgent=no", "-o", "ForwardX11=no", "-o", "ClearAllForwardings=yes",
            "-o", "PermitLocalCommand=no", "-o", "UpdateHostKeys=no", "-o", "LogLevel=INFO",
            "-o", "ControlMaster=no", "-p", "22", "-l", "root", "--", "node-1",
            "flocker-zfs peer hello"])

    def test_dash_dash_right_before_host(self):
        """
        ``--`` is right before the host, and nothing before it but options.
        """
        for host in GOOD_HOSTS:
            argv = ssh_argv(CONFIG, host, ["x"])
            self.assertEqual(argv[-3:-1], ["--", host])
            self.assertEqual(argv.count("--"), 1)

    def test_config_values(self):
        """
        Port, user, timeouts and ciphers from the config appear in the argv;
        an explicit port overrides the config's.
        """
        config = CONFIG.set(port=2222, user="flocker", connect_timeout=3,
                            server_alive_interval=4, server_alive_count=5,
                            ciphers="aes128-gcm@openssh.com")
        argv = ssh_argv(config, "::1", ["x"])
        self.assertEqual(argv[argv.index("-p") + 1], "2222")
        self.assertEqual(argv[argv.index("-l") + 1], "flocker")
        self.assertEqual(argv[argv.index("-c") + 1], "aes128-gcm@openssh.com")
        self.assertTrue({"ConnectTimeout=3", "ServerAliveInterval=4",
                         "ServerAliveCountMax=5"} <= set(_options(argv)))
        argv = ssh_argv(config, "::1", ["x"], port=2200)
        self.assertEqual(argv[argv.index("-p") + 1], "2200")

    def test_control_dir(self):
        """
        With a control directory, connections are multiplexed through a
        socket in it; without one, never.
        """
        argv = ssh_argv(CONFIG.set(control_dir="/run/flocker/ssh"), "h", ["x"])
        options = _options(argv)
        self.assertIn("ControlMaster=auto", options)
        self.assertIn("ControlPath=/run/flocker/ssh/%C", options)
        self.assertIn("ControlPersist=60", options)
        self.assertNotIn("ControlMaster=no", options)

    def test_never_unsafe_options(self):
        """
        No argv ever has ``-q``, an agent, or lax host key checking.
        """
        for config in (CONFIG, CONFIG.set(control_dir="/run/c", ciphers="aes128-ctr")):
            argv = ssh_argv(config, "h", ["x"])
            self.assertNotIn("-q", argv)
            self.assertNotIn("-A", argv)
            options = [o.lower() for o in _options(argv)]
            for bad in ("stricthostkeychecking=no", "stricthostkeychecking=accept-new",
                        "stricthostkeychecking=off", "forwardagent=yes",
                        "userknownhostsfile=/dev/null", "loglevel=quiet",
                        "loglevel=fatal", "loglevel=error"):
                self.assertNotIn(bad, options)

    def test_hostile_host(self):
        """
        A hostile host is refused before any argv exists.
        """
        for host in HOSTILE_HOSTS:
            self.assertRaises(InvalidName, ssh_argv, CONFIG, host, ["x"])

    def test_bad_port_argument(self):
        """
        An explicit port is validated too.
        """
        self.assertRaises(ConfigError, ssh_argv, CONFIG, "h", ["x"], port="22 -oX")

    def test_empty_remote(self):
        """
        An empty remote command (an interactive login) is refused.
        """
        self.assertRaises(InvalidName, ssh_argv, CONFIG, "h", [])

    @given(st.lists(st.text(st.characters(blacklist_characters="\0")), min_size=1))
    def test_remote_round_trip(self, remote):
        """
        For any remote argv, the string ssh sends splits back into it.
        """
        self.assertEqual(shlex.split(ssh_argv(CONFIG, "h", remote)[-1]), remote)

    def test_integers_in_remote(self):
        """
        Integer arguments are sent as their decimal text.
        """
        self.assertEqual(ssh_argv(CONFIG, "h", ["a", 12])[-1], "a 12")
