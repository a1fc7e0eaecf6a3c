"""CURVE keys, the ZAP allow-list, and the rule about binding without keys.

Layout of a keys folder made by ``robocell keys generate DIR``::

    DIR/server.key           server public key (give to clients)
    DIR/server.key_secret    server secret key (stays on the server)
    DIR/client.key           a client public key
    DIR/client.key_secret    that client's secret key (give to the client)
    DIR/authorized/          public keys the server accepts (the allow-list)

A server started with ``--keys DIR`` accepts exactly the clients whose public
key is in ``DIR/authorized``; NULL (unencrypted) and unlisted clients are
refused by ZAP before any message reaches robocell (and each refusal is audited).

Each file is a ZeroMQ certificate in ZPL text, as ``zmq.auth.create_certificates``
writes it: comment lines, then ``metadata`` and ``curve`` sections, the latter with
``public-key = "<40 Z85 characters>"`` and, in ``.key_secret`` files only,
``secret-key = "<40 Z85 characters>"`` (docs/protocol.md §1 shows one).
"""

from __future__ import annotations

import ipaddress
import shutil
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from robocell.errors import ConfigError

if TYPE_CHECKING:
    import zmq


@dataclass(frozen=True)
class ServerKeys:
    public: bytes
    secret: bytes
    authorized: Path


@dataclass(frozen=True)
class ClientKeys:
    public: bytes
    secret: bytes
    server_public: bytes
    folder: Path | None = None  # where they were loaded from (named in connection errors)


def generate(folder: str | Path, client_name: str = "client") -> list[Path]:
    """Create server and client key pairs and authorise the client; never overwrites."""
    import zmq.auth

    from robocell.core.outputs import check_output

    d = Path(folder)
    for name in ("server", client_name):
        if (d / f"{name}.key_secret").exists():
            raise ConfigError(f"{d / (name + '.key_secret')} exists already; choose another folder "
                              "(keys are never overwritten, not even with --force: clients may depend on them)")
    # a folder that holds other files is fine (only the key files must be new); it must be writable
    check_output(d, "keys generate", kind="folder", force=True)
    d.mkdir(parents=True, exist_ok=True)
    made: list[Path] = []
    for name in ("server", client_name):
        pub, sec = zmq.auth.create_certificates(str(d), name)
        Path(sec).chmod(0o600)
        made += [Path(pub), Path(sec)]
    auth = d / "authorized"
    auth.mkdir(exist_ok=True)
    shutil.copy(d / f"{client_name}.key", auth / f"{client_name}.key")
    made.append(auth / f"{client_name}.key")
    return made


def _load(path: Path, secret: bool) -> tuple[bytes, bytes | None]:
    import zmq.auth

    if not path.exists():
        raise ConfigError(f"key file {path} does not exist; make keys with: robocell keys generate DIR")
    try:
        pub, sec = zmq.auth.load_certificate(str(path))
    except (ValueError, OSError) as exc:
        raise ConfigError(f"key file {path} is not a ZeroMQ certificate ({exc})") from exc
    if secret and not sec:
        raise ConfigError(f"{path} holds no secret key; give the .key_secret file")
    return pub, sec


def load_server_keys(folder: str | Path) -> ServerKeys:
    d = Path(folder)
    pub, sec = _load(d / "server.key_secret", secret=True)
    auth = d / "authorized"
    if not auth.is_dir() or not any(auth.glob("*.key")):
        raise ConfigError(f"{auth} holds no client public keys: no client could connect. "
                          "Copy each client's .key file there")
    assert sec is not None
    return ServerKeys(pub, sec, auth)


def load_client_keys(folder: str | Path, client_name: str = "client") -> ClientKeys:
    d = Path(folder)
    pub, sec = _load(d / f"{client_name}.key_secret", secret=True)
    server_pub, _ = _load(d / "server.key", secret=False)
    assert sec is not None
    return ClientKeys(pub, sec, server_pub, d)


def secure_client_socket(sock: zmq.Socket[bytes], keys: ClientKeys | None) -> None:
    """Make ``sock`` a CURVE client of the server ``keys.server_public`` names (no keys: left as is)."""
    if keys is not None:
        sock.curve_secretkey = keys.secret
        sock.curve_publickey = keys.public
        sock.curve_serverkey = keys.server_public


def is_loopback(endpoint: str) -> bool:
    """True for tcp://127.x / [::1] / localhost, ipc:// and inproc:// endpoints."""
    parts = urlsplit(endpoint)
    if parts.scheme in ("ipc", "inproc"):
        return True
    host = parts.hostname or ""
    if host == "localhost":
        return True
    if host in ("*", ""):
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(a[4][0]).is_loopback for a in socket.getaddrinfo(host, None))
        except OSError:
            return False


def check_free(bind: str, state_bind: str | None = None) -> None:
    """ConfigError when an endpoint the server would bind is taken (by another server, say).

    Binds and releases each endpoint with a throw-away socket before the driver connects,
    so the mistake costs nothing and reads as a sentence, not as a ZMQError traceback.
    """
    import errno

    import zmq

    ctx = zmq.Context()
    try:
        with ctx.socket(zmq.ROUTER) as probe:
            probe.setsockopt(zmq.LINGER, 0)
            try:
                probe.bind(bind)
            except zmq.ZMQError as exc:
                raise _bind_error("--bind", bind, exc, errno.EADDRINUSE) from None
            endpoint = probe.getsockopt_string(zmq.LAST_ENDPOINT)
        if state_bind is None:
            state_bind = _state_endpoint(bind, endpoint)
            option = "--bind (its state stream, on the next port)"
        else:
            option = "--state-bind"
        if state_bind is not None:
            with ctx.socket(zmq.PUB) as probe:
                probe.setsockopt(zmq.LINGER, 0)
                try:
                    probe.bind(state_bind)
                except zmq.ZMQError as exc:
                    raise _bind_error(option, state_bind, exc, errno.EADDRINUSE) from None
    finally:
        ctx.term()


def _state_endpoint(bind: str, endpoint: str) -> str | None:
    """The state stream's endpoint for a command endpoint with a fixed port (None for port 0 or ipc)."""
    # as the server picks it (robocell.hardware.server): same host, command port + 1
    head, _, port = endpoint.rpartition(":")
    if bind.endswith((":0", ":*")) or not port.isdigit():
        return None
    return f"{head}:{int(port) + 1}"


def _bind_error(option: str, endpoint: str, exc: Exception, in_use: int) -> ConfigError:
    if getattr(exc, "errno", None) == in_use:
        return ConfigError(f"{option} {endpoint}: the address is already in use (another `robocell serve`, or "
                           "another program, listens there); nothing was started. Stop that server, or give a "
                           "free port with --bind (the state stream takes the next port too, or --state-bind)")
    return ConfigError(f"{option} {endpoint}: cannot bind ({exc}); give an endpoint such as tcp://127.0.0.1:5555")


def check_bind(endpoint: str, keys: object, insecure: bool) -> None:
    if keys is None and not insecure and not is_loopback(endpoint):
        raise ConfigError(
            f"refusing to bind {endpoint} without keys: anyone on the network could move the arm. "
            "Give --keys DIR (make them with: robocell keys generate DIR), bind 127.0.0.1, "
            "or pass --insecure if this network is isolated and you accept the risk"
        )


class AllowList:
    """The ZAP credentials provider: accepts the CURVE keys in a folder, reports every refusal.

    ``zmq.auth``'s own ``configure_curve(location=...)`` refuses unlisted keys silently; given
    to ``configure_curve_callback`` instead, this does the same check and calls
    ``on_refused(z85_key)`` for each refused handshake (the server audits it).
    """

    def __init__(self, folder: Path, on_refused: Callable[[str], None]) -> None:
        import zmq.auth

        self.keys = frozenset(zmq.auth.load_certificates(str(folder)))  # Z85 public keys (bytes)
        self.on_refused = on_refused

    def callback(self, domain: str, key: bytes) -> bool:
        if key in self.keys:
            return True
        self.on_refused(key.decode("ascii", "replace"))
        return False
