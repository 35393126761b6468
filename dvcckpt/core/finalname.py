"""Names of final models: checkpoints of a run that have no step.

A run record without a step (the "minimal tracking template" as is) describes the
model a run ended with. Its card is named by the project's checkpoint pattern with
the step part (the `{step}` placeholder and the word glued to it, `-step{step:06d}`)
replaced by `final`: `{model}-{phase}-{kind}-step{step:06d}` names it
`{model}-{phase}-{kind}-final`. Every other placeholder stays, so a pattern that
tells runs apart (a run id, a seed) tells their final models apart too, and the
name parses back into the same fields as any other card's.
"""

from __future__ import annotations

import re
import string

from dvcckpt.core import naming

FINAL_WORD = "final"
_GLUED_WORD = re.compile(r"[^-_.]*$")  # the literal's end after its last separator


def final_pattern(pattern: str) -> str | None:
    """The final-model form of a checkpoint pattern; None when it has no `{step}`."""
    if "step" not in naming.placeholders(pattern, "checkpoint naming pattern"):
        return None
    pieces = []
    for literal, name, spec, _conversion in string.Formatter().parse(pattern):
        escaped = literal.replace("{", "{{").replace("}", "}}")
        if name == "step":
            pieces.append(_GLUED_WORD.sub("", escaped) + FINAL_WORD)
        elif name is not None:
            pieces.append(escaped + "{" + name + (f":{spec}" if spec else "") + "}")
        else:
            pieces.append(escaped)
    return "".join(pieces)


def parse(pattern: str, name: str) -> dict[str, str | int] | None:
    """Fields of a final model's `name` under the checkpoint `pattern`, or None."""
    final = final_pattern(pattern)
    return None if final is None else naming.parse(final, name)
