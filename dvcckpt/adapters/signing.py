"""SSH signatures over decisions, with `ssh-keygen -Y` (namespace `dvcckpt`), offline.

Decisions are signed rather than commits, so a signature survives merge, squash
and rebase merges. Verification uses git's allowed-signers format; which file
is trusted is the caller's business (the first parent's version, never the
change's own).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from dvcckpt.adapters import git
from dvcckpt.core.decision import NAMESPACE
from dvcckpt.errors import ConfigError, StateError

_TIMEOUT = 30  # seconds; ssh-keygen never waits on the network, only on a passphrase prompt


def signing_key(root: Path, explicit: Path | None = None) -> Path | None:
    """The private key to sign with: `--key PATH`, else git's `user.signingkey` for ssh."""
    if explicit is not None:
        key = explicit
    else:
        if (git.config_value(root, "gpg.format") or "openpgp") != "ssh":
            return None
        configured = git.config_value(root, "user.signingkey")
        if not configured or configured.startswith(("key::", "ssh-")):
            return None  # a literal public key needs an agent; dvcckpt signs with key files
        key = Path(configured).expanduser()
        key = key if key.is_absolute() else root / key
    if key.suffix == ".pub" and key.with_suffix("").is_file():
        key = key.with_suffix("")  # git may name the public half; ssh-keygen signs with either
    if not key.is_file():
        raise ConfigError(
            f"signing key {key} does not exist",
            hint="pass --key PATH, or set git config user.signingkey to an SSH key file",
        )
    return key


def public_key(key: Path) -> str:
    """`KEYTYPE BASE64` of a key file (private or public)."""
    pub = key if key.suffix == ".pub" else key.with_name(key.name + ".pub")
    if pub.is_file():
        text = pub.read_text(encoding="utf-8").split()
    else:
        text = _keygen(["-y", "-f", str(key)], key, "read the public key of").split()
    return " ".join(text[:2])


def sign(data: bytes, key: Path) -> str:
    """An armored SSH signature of `data`."""
    with tempfile.TemporaryDirectory(prefix="dvcckpt-sign-") as temp:
        message = Path(temp) / "decision"
        message.write_bytes(data)
        _keygen(["-Y", "sign", "-f", str(key), "-n", NAMESPACE, str(message)], key, "sign with")
        return (Path(temp) / "decision.sig").read_text(encoding="ascii")


def verify(data: bytes, signature: str, allowed_signers: str, principal: str) -> str | None:
    """None when `principal` validly signed `data` per `allowed_signers`, else why not."""
    if not allowed_signers.strip():
        return "no allowed signers are configured"
    with tempfile.TemporaryDirectory(prefix="dvcckpt-verify-") as temp:
        signers = Path(temp) / "allowed_signers"
        signers.write_text(allowed_signers, encoding="utf-8")
        sig = Path(temp) / "decision.sig"
        sig.write_text(signature, encoding="ascii", errors="replace")
        command = [_ssh_keygen(), "-Y", "verify", "-f", str(signers), "-I", principal,
                   "-n", NAMESPACE, "-s", str(sig)]  # fmt: skip
        try:
            done = subprocess.run(command, input=data, capture_output=True, timeout=_TIMEOUT)
        except subprocess.TimeoutExpired:
            return "ssh-keygen did not answer"
    if done.returncode == 0:
        return None
    lines = (done.stderr or done.stdout).decode(errors="replace").strip().splitlines()
    return f"bad signature for {principal}" + (f" ({lines[-1]})" if lines else "")


def _keygen(args: list[str], key: Path, action: str) -> str:
    try:
        done = subprocess.run(
            [_ssh_keygen(), *args], stdin=subprocess.DEVNULL, capture_output=True, timeout=_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        raise StateError(
            f"ssh-keygen timed out trying to {action} the key",
            hint="use a key without a passphrase, or load it into ssh-agent",
        ) from None
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        raise StateError(
            f"cannot {action} the key {key}: {lines[-1] if lines else 'ssh-keygen failed'}",
            hint="check the key file (ssh-keygen -l -f KEY) and its permissions",
        )
    return done.stdout.decode(errors="replace")


def _ssh_keygen() -> str:
    found = shutil.which("ssh-keygen")
    if found is None:
        raise StateError("ssh-keygen is not installed", hint="install OpenSSH (openssh-client)")
    return found
