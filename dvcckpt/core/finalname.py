"""Names of final models: checkpoints of a run that have no step.

A run record without a step (the "minimal tracking template" as is) describes the
model a run ended with. Its card is named by the project's checkpoint pattern with
the step part (the `{step}` placeholder and the word glued to it, `-step{step:06d}`)
replaced by `final`: `{model}-{phase}-{kind}-{run_id}-step{step:06d}` names it
`{model}-{phase}-{kind}-{run_id}-final`. Every other placeholder stays, so the name
parses back into the same fields as any other card's.

Final models must differ per run, so a pattern without `{run_id}` gets one before
`final` (`{model}-{phase}-{kind}-step{step:06d}` -> `{model}-{phase}-{kind}-{run_id}-final`);
names of the earlier form, without a run id, still parse.
"""

from __future__ import annotations

import re
import string

from dvcckpt.core import naming

FINAL_WORD = "final"
_GLUED_WORD = re.compile(r"[^-_.]*$")  # the literal's end after its last separator


def final_pattern(pattern: str) -> str | None:
    """The final-model form of a checkpoint pattern; None when it has no `{step}`."""
    return _final(pattern, run_id=True)


def _final(pattern: str, run_id: bool) -> str | None:
    used = naming.placeholders(pattern, "checkpoint naming pattern")
    if "step" not in used:
        return None
    word = FINAL_WORD if "run_id" in used or not run_id else "{run_id}-" + FINAL_WORD
    pieces: list[str] = []
    for literal, name, spec, _conversion in string.Formatter().parse(pattern):
        escaped = literal.replace("{", "{{").replace("}", "}}")
        if name == "step":
            kept = _GLUED_WORD.sub("", escaped)
            # Two placeholders need a separator between them (`{project}/{step}`).
            glue = (
                "-" if not kept and pieces and pieces[-1].endswith("}") and word[0] == "{" else ""
            )
            pieces.append(kept + glue + word)
        elif name is not None:
            pieces.append(escaped + "{" + name + (f":{spec}" if spec else "") + "}")
        else:
            pieces.append(escaped)
    return "".join(pieces)


def parse(pattern: str, name: str) -> dict[str, str | int] | None:
    """Fields of a final model's `name` under the checkpoint `pattern`, or None."""
    patterns = [pattern]
    if pattern == naming.DEFAULT_CHECKPOINT_PATTERN:
        patterns.append(naming.EARLIER_DEFAULT)  # cards named before it had a run id
    finals = [_final(p, run_id) for p in patterns for run_id in (True, False)]
    for final in dict.fromkeys(finals):
        fields = None if final is None else naming.parse(final, name)
        if fields is not None:
            return fields
    return None
