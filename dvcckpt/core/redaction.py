"""Keeping secrets out of cards: one redactor for everything recorded from user input.

Pure functions. `redact_tree` is the one entry point for card content (params,
split values, run records, notes, extension sections): a string under a
secret-looking key is replaced, and every string is scanned for credentials
wherever they appear: known token formats, `user:password@` in a URL of any
scheme, secret query parameters and `KEY=VALUE` assignments, private-key blocks.
`redact_command` does the same for command lines, where an option's name decides
whether the next argument is a secret. Numbers and booleans are never secrets
(a `pass@1` metric or `use_auth_token: true` stays as is).
"""

from __future__ import annotations

import functools
import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

REDACTED = "***"

# Words that make a key or option name secret wherever they appear in it, as whole
# words (`hf_token`, `dbPassword`, `X-Api-Key`; not `tokenizer` or `max_tokens`).
_SECRET_WORDS = frozenset({
    "token", "secret", "secrets", "password", "passwd", "passphrase", "pwd", "credential",
    "credentials", "creds", "apikey", "accesskey", "secretkey", "privatekey", "authorization",
    "auth", "jwt", "cookie", "signature", "sig", "sas", "dsn", "bearer", "webhook",
})  # fmt: skip
# `KEY` is secret after one of these (`api_key`, `private-key`, `ssh_key`; not `sort_key`).
_KEY_QUALIFIERS = frozenset({
    "api", "access", "private", "secret", "ssh", "encryption", "master", "license", "signing",
    "client", "service", "account", "storage", "subscription", "app", "deploy", "gpg", "pgp",
    "rsa", "hmac", "session", "auth", "aws", "gcp", "azure", "openai", "wandb", "hf",
})  # fmt: skip
# `TOKEN` after one of these names a vocabulary entry, not a credential (`pad_token`).
_VOCABULARY = frozenset({
    "pad", "bos", "eos", "unk", "cls", "sep", "mask", "start", "end", "special", "max", "min",
    "num", "n", "total", "per", "first", "last", "image", "audio", "video", "vocab", "decoder",
    "sentinel", "stop", "eot", "think", "default", "new",
})  # fmt: skip
# Short options that take a secret (`huggingface-cli login -t TOKEN`).
_SECRET_SHORT_OPTIONS = frozenset({"-t"})
# Names that are secret only on their own (`--key`, `--pass`; not `sort_key`, `pass_rate`).
_SECRET_NAMES = (["key"], ["pass"], ["pw"])
# The name part of `--name=VALUE`, `NAME=VALUE` or a Hydra `+a.b=VALUE` (not a URL's query).
_NAME = re.compile(r"[-+]{0,2}[A-Za-z_][\w.-]*\Z")
_WORDS = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")

# Credential formats recognised anywhere in any string.
_TOKENS = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?(?:-----END [A-Z0-9 ]*-----|\Z)"
    r"|\bhf_[A-Za-z0-9]{20,}"  # Hugging Face
    r"|\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})"  # GitHub
    r"|\bglpat-[A-Za-z0-9_-]{20,}"  # GitLab
    # OpenAI, Anthropic (`sk-ant-api03-...`): a random run, unlike `sk-learn-baseline`
    r"|\bsk-(?=[A-Za-z0-9_-]*[A-Za-z0-9]{16})[A-Za-z0-9_-]{20,}"
    r"|\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}"  # Stripe
    r"|\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b"  # AWS key ids
    r"|\bAIza[A-Za-z0-9_-]{35}"  # Google API keys
    r"|\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"  # JWTs
    r"|\bxox[abposr]-[A-Za-z0-9-]{10,}|\bxapp-[A-Za-z0-9-]{10,}"  # Slack tokens
    r"|(?<=hooks\.slack\.com/services/)[A-Za-z0-9/_-]+"  # Slack webhooks
    r"|(?<=discord\.com/api/webhooks/)[A-Za-z0-9/_-]+"
    r"|\b(?:npm_[A-Za-z0-9]{36}|pypi-[A-Za-z0-9_-]{50,})"  # package registries
    r"|(?i:(?<=bearer )|(?<=authorization: basic ))[A-Za-z0-9._~+/=-]{16,}",  # HTTP auth
    re.S,
)
# `scheme://userinfo@` in any URL; the userinfo is everything up to the authority's last `@`.
_URL_USERINFO = re.compile(
    r"(?<![A-Za-z0-9+.-])([A-Za-z][A-Za-z0-9+.-]{0,30}://)([^\s/?#@]*(?:@[^\s/?#@]*)*)@"
)
# `NAME=VALUE` inside a string: query parameters, `--opt=...`, `libpq` strings, env lines.
_ASSIGNMENT = re.compile(r"(?<![\w.-])([A-Za-z_][\w.-]{0,63})=([^\s&;,'\"]+)")


def is_secret_key(name: str) -> bool:
    """Whether a parameter, option or setting name says its value is a credential."""
    # Names repeat (10,000 arguments use a few dozen); only short ones are worth keeping.
    return _cached_secret_key(name) if len(name) <= 128 else _secret_key(name)


def _secret_key(name: str) -> bool:
    if name.isupper() and name.endswith("_KEY"):
        return True  # environment-variable style: WANDB_API_KEY, OPENAI_KEY
    words = [word.lower() for word in _WORDS.findall(name)]
    if words in _SECRET_NAMES:
        return True
    for index, word in enumerate(words):
        before = words[index - 1] if index else ""
        if word == "token" and before in _VOCABULARY:
            continue
        if word in _SECRET_WORDS or (word == "key" and before in _KEY_QUALIFIERS):
            return True
    return False


_cached_secret_key = functools.lru_cache(maxsize=4096)(_secret_key)


def redact_text(text: str) -> str:
    """`text` with every credential found in it replaced by `***`."""
    if len(text) < 5:
        return text
    text = _TOKENS.sub(REDACTED, text)
    text = _URL_USERINFO.sub(_userinfo, text)
    return _ASSIGNMENT.sub(_assignment, text) if "=" in text else text


def has_secret(text: str) -> bool:
    """Whether `text` holds a credential `redact_text` would hide (e.g. a remote's URL)."""
    return redact_text(text) != text


def _userinfo(match: re.Match[str]) -> str:
    info = match.group(2)
    # A password (`user:pw@`), or a token used as the user name (`https://TOKEN@host`).
    if ":" in info or "@" in info or len(info) >= 20 or REDACTED in info:
        return f"{match.group(1)}{REDACTED}@"
    return match.group(0)


def _assignment(match: re.Match[str]) -> str:
    if is_secret_key(match.group(1)) and match.group(2) != REDACTED:
        return f"{match.group(1)}={REDACTED}"
    return match.group(0)


def redact_tree(value: Any) -> Any:
    """A copy of card content (mappings, lists, scalars) with every secret replaced.

    Iterative, so no nesting depth can exhaust the stack; tuples become lists.
    """
    holder: list[Any] = [None]
    stack: list[tuple[Any, Any, Any, bool]] = [(holder, 0, value, False)]
    while stack:
        parent, slot, item, secret = stack.pop()
        if isinstance(item, Mapping):
            copy: dict[Any, Any] = {}
            parent[slot] = copy
            for key, child in item.items():
                name = redact_text(key) if isinstance(key, str) else key
                copy[name] = None
                hidden = secret or (isinstance(key, str) and is_secret_key(key))
                stack.append((copy, name, child, hidden))
        elif isinstance(item, list | tuple):
            items: list[Any] = [None] * len(item)
            parent[slot] = items
            stack.extend((items, index, child, secret) for index, child in enumerate(item))
        elif isinstance(item, str):
            parent[slot] = REDACTED if secret and item.strip() else redact_text(item)
        else:
            parent[slot] = item
    return holder[0]


def strip_credentials(url: str | None) -> str | None:
    """`https://user:tok@host/x.git` -> `https://host/x.git`; scp-style URLs keep `git@`."""
    if not url or "://" not in url:
        return url
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
    except ValueError:  # an unparsable port or address: keep no part that could hold a secret
        return redact_text(url.split("?", 1)[0].split("#", 1)[0])
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def redact_command(argv: Sequence[str]) -> str:
    """Command line as a shell string, with every secret value hidden."""
    redacted: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next and not (arg.startswith("-") and len(arg) > 1):
            redacted.append(REDACTED)
            hide_next = False
            continue
        hide_next = False
        name, sep, _value = arg.partition("=")
        if sep and _NAME.match(name) and (is_secret_key(name) or name in _SECRET_SHORT_OPTIONS):
            redacted.append(f"{name}={REDACTED}")
        elif arg.startswith("-") and not sep and _secret_option(arg):
            redacted.append(arg)
            hide_next = True
        else:
            redacted.append(redact_text(arg))
    # Once more over the whole line: `Bearer TOKEN` may come as two arguments.
    return redact_text(shlex.join(redacted))


def _secret_option(option: str) -> bool:
    return option in _SECRET_SHORT_OPTIONS or (option.startswith("--") and is_secret_key(option))


def redact_command_text(command: str) -> str:
    """`redact_command` for a command line given as one string."""
    try:
        argv = shlex.split(command)
    except ValueError:
        argv = command.split()
    return redact_command(argv)


# Home folders, the part of an absolute path that names the user (`/home/ada/...`).
_HOME = re.compile(
    r"^(?:/home/[^/]+|/Users/[^/]+|/root|[A-Za-z]:[\\/]Users[\\/][^\\/]+)(?=[\\/]|$)"
)
_ABSOLUTE = re.compile(r"^(?:/|[A-Za-z]:[\\/]|\\\\)")


def portable_path(path: str, home: str | None = None) -> str:
    """A path outside the repository as a card records it, never naming a home folder.

    Relative paths stay; `/home/ada/x/train.py` (or anything under `home`) becomes
    `~/x/train.py`; any other absolute path keeps its file name only, the rest
    describes another machine's layout, not the code.
    """
    base = (home or "").rstrip("/\\")
    if base and (path == base or path.startswith(base + "/")):
        return "~" + path[len(base) :]
    collapsed = _HOME.sub("~", path, count=1)
    if collapsed != path or not _ABSOLUTE.match(path):
        return collapsed
    return re.split(r"[\\/]", path.rstrip("/\\"))[-1] or path


# DVC remote options that hold a credential, or name a file holding one: they belong in
# the git-ignored `.dvc/config.local` (`dvc remote modify --local`), never in the
# committed `.dvc/config`. From DVC's remote schema (dvc/config_schema.py, REMOTE_SCHEMAS).
DVC_CREDENTIAL_OPTIONS = frozenset({
    "access_key_id", "secret_access_key", "session_token", "sse_customer_key",  # s3
    "credentialpath",  # s3, gs: a credentials file
    "password", "passphrase", "keyfile", "kerb_ticket",  # ssh, http, hdfs, webhdfs
    "token", "bearer_token_command", "key_path", "cert_path",  # webdav, webhdfs
    "connection_string", "sas_token", "account_key", "client_secret",  # azure
    "oss_key_id", "oss_key_secret",  # oss
    "gdrive_client_secret", "gdrive_user_credentials_file",  # gdrive
    "gdrive_service_account_json_file_path",
})  # fmt: skip
