"""A client's keys folder, checked before it is used: files present and readable, and consistent.

``robocell doctor --keys DIR`` (and any tool that wants plain errors) calls
:func:`load_checked`: a file that is missing or unreadable is a user mistake
(:class:`~robocell.errors.ConfigError`, exit 2) named with what to do; things
that work but are unwise or inconsistent (a secret key others can read, a
``server.key`` that differs from the ``server.key_secret`` next to it, a
client key missing from the folder's own allow-list) come back as warnings.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from robocell.errors import ConfigError
from robocell.hardware.security import ClientKeys, load_client_keys

CLIENT_SECRET = "client.key_secret"
SERVER_PUBLIC = "server.key"


@dataclass
class KeysFolder:
    """Keys loaded from a folder, with what was noticed about it."""

    keys: ClientKeys
    folder: Path
    warnings: list[str] = field(default_factory=list)

    @property
    def client_id(self) -> str:
        """The client's public key (Z85): its key id in the server's audit log and lease."""
        return self.keys.public.decode()

    @property
    def server_id(self) -> str:
        return self.keys.server_public.decode()


def load_checked(folder: Path) -> KeysFolder:
    """The client keys in ``folder``; ConfigError naming the file and the fix when one is unusable."""
    if not folder.exists():
        raise ConfigError(f"--keys {folder}: no such folder; give the keys folder made by "
                          "`robocell keys generate DIR` (the client needs its server.key and client.key_secret)")
    if not folder.is_dir():
        raise ConfigError(f"--keys {folder} is a file, not a folder; give the folder that holds "
                          "server.key and client.key_secret")
    for name in (CLIENT_SECRET, SERVER_PUBLIC):
        _readable(folder / name)
    keys = load_client_keys(folder)  # ConfigError for a file that is not a ZeroMQ certificate
    found = KeysFolder(keys, folder)
    secret = folder / CLIENT_SECRET
    mode = secret.stat().st_mode
    if mode & (stat.S_IRGRP | stat.S_IROTH):
        found.warnings.append(f"{secret} can be read by other users (mode {stat.S_IMODE(mode):o}): anyone who "
                              f"copies it can act as this client; run: chmod 600 {secret}")
    server_secret = folder / "server.key_secret"
    if server_secret.is_file() and os.access(server_secret, os.R_OK):
        pub = _public_of(server_secret)
        if pub is not None and pub != keys.server_public:
            found.warnings.append(f"{folder / SERVER_PUBLIC} is not the public half of {server_secret} in the same "
                                  "folder: a server started with --keys on this folder would refuse this "
                                  "client's handshake; copy the server's server.key here again")
    authorized = folder / "authorized"
    if authorized.is_dir():
        listed = [p for p in authorized.glob("*.key") if _public_of(p) == keys.public]
        if not listed:
            found.warnings.append(f"{authorized}/ does not list this client's key ({folder / 'client.key'}): a "
                                  f"server started with --keys {folder} would refuse it; copy client.key there")
    return found


def _readable(path: Path) -> None:
    if not path.exists():
        raise ConfigError(f"key file {path} does not exist; copy it from the keys folder that "
                          "`robocell keys generate DIR` made for the server (clients need server.key and "
                          "client.key_secret)")
    if not path.is_file():
        raise ConfigError(f"key file {path} is not a file; give the folder that holds the key files")
    try:
        path.open("rb").close()  # opening is the check: os.access answers for the real uid, not the effective one
    except PermissionError:
        raise ConfigError(f"key file {path} cannot be read by this user (permission denied); run as the user "
                          f"who owns it, or give this user read access (chmod u+r {path})") from None
    except OSError as exc:
        raise ConfigError(f"key file {path} cannot be read ({exc.strerror or exc}); check the file") from None


def _public_of(path: Path) -> bytes | None:
    import zmq.auth

    try:
        return zmq.auth.load_certificate(str(path))[0]
    except (ValueError, OSError):
        return None  # not a certificate: it cannot match, and the folder check names what matters
