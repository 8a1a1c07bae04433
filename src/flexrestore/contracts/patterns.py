"""The patterns of Atlas's names and ids, shared by every model that accepts them: the restore request
(``domain/request.py``) and the verification plan (``contracts/plan.py``). One copy, here, because
``contracts/`` may not import the domain.

The patterns are for pydantic (``Field(pattern=...)``): pydantic-core's Rust regex knows ``\\p{L}`` and
``\\p{N}``, and its ``$`` matches only at the very end (Python's ``re`` would also accept a trailing newline
and does not know ``\\p{L}``); :func:`is_target_name` checks a name built at run time the same way.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Annotated, Final

from pydantic import Field, TypeAdapter, ValidationError

ATLAS_ID_PATTERN: Final = r"^[a-f0-9]{24}$"
CLUSTER_NAME_PATTERN: Final = r"^[a-zA-Z0-9][a-zA-Z0-9-]*$"
CLUSTER_NAME_MAX_CHARS: Final = 64
# Atlas's pattern for targetDeploymentItemName is ^[\p{L}\p{N}\-_.(),:&@+']{1,64}$ (Unicode letters and
# digits). Its length bound lives in ``max_length=TARGET_NAME_MAX_CHARS`` wherever this pattern is used, which
# accepts exactly the same names: pydantic-core's regex compiles {1,64} of these Unicode classes into 64
# copies, about 20 ms of every cold start that defines a model with it, where + takes about 1 ms.
TARGET_NAME_PATTERN: Final = r"^[\p{L}\p{N}\-_.(),:&@+']+$"
TARGET_NAME_MAX_CHARS: Final = 64

# C0 and C1 controls, DEL, the line/paragraph separators, the bidi marks/embeddings/overrides/isolates
# that can make text display as something else, and lone surrogates (not text at all; JSON can carry them).
FORBIDDEN_CHARACTERS: Final = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]"
)


@cache
def _target_name() -> TypeAdapter[str]:
    # Built on first use: only verification plans check names built at run time.
    return TypeAdapter(Annotated[str, Field(pattern=TARGET_NAME_PATTERN, max_length=TARGET_NAME_MAX_CHARS)])


def hidden_character_problem(value: str) -> str | None:
    """Why ``value`` is refused (a control or bidirectional-override character, and where), or None."""
    found = FORBIDDEN_CHARACTERS.search(value)
    if found is None:
        return None
    return (
        f"must not contain control or bidirectional-override characters "
        f"(found U+{ord(found.group()):04X} at position {found.start() + 1})"
    )


def is_target_name(name: str) -> bool:
    """True when ``name`` is a valid ``targetDeploymentItemName``: the pattern, no hidden characters."""
    if hidden_character_problem(name) is not None:
        return False
    try:
        _target_name().validate_python(name, strict=True)
    except ValidationError:
        return False
    return True
