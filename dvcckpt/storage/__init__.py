"""Remote storage with verified integrity: push, pull, get, verify, remote settings.

DVC uploads the bytes; dvcckpt checks every copy it hands to a user with md5 and
sha256 against the card. Checkouts are built from verified objects in a staging
folder and only then moved into place; a copy that fails is moved to a quarantine
folder inside the DVC directory for inspection. Nothing is ever deleted on a
remote: the only write besides DVC's uploads is `push` replacing an object whose
bytes do not match its own md5 with the verified cache copy (the bad bytes kept
in quarantine).

Modules: `select` (which checkpoints, and what their cards promise), `copies`
(where each copy lives and which files to hash), `verify` (hashing and
verdicts), `quarantine`, `checkout` (objects verified into a staging folder,
assembled, moved into place), `transfer` (push, pull), `recheck` (the remote
copies a push would skip), `download` (get), `progress` (terminal bars),
`remotes` (adding remotes, and warnings about their settings).
"""
