"""Remote storage with verified integrity: push, pull, get, verify, remote settings.

DVC moves the bytes (and checks md5 at most); dvcckpt re-hashes every copy it
hands to a user with sha256 and compares it with the card. A copy that fails is
moved to a quarantine folder inside the DVC directory for inspection; nothing
is ever deleted on a remote.

Modules: `select` (which checkpoints, and what their cards promise), `copies`
(where each copy lives and which files to hash), `verify` (hashing and
verdicts), `quarantine`, `transfer` (push, pull, get), `progress` (terminal
bars), `remotes` (adding remotes, and warnings about their settings).
"""
