"""The secret scan: what must never show (the needles) and where to look (the haystacks)."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping

from flexrestore.simulator import AtlasSimulator

_DIGEST_RESPONSE = re.compile(r'response="([^"]+)"')


def secret_needles(secret: Mapping[str, str], sim: AtlasSimulator) -> dict[str, str]:
    """What must never show, by what it is: the Atlas secret's private value (client secret or private key)
    and the Basic credentials made of it, every bearer access token the simulator issued, every
    Authorization header it received, and the Digest ``response=`` inside one."""
    found: dict[str, str] = {}
    for name in ("clientSecret", "privateKey"):
        if name in secret:
            found[f"the Atlas {name}"] = secret[name]
    if "clientSecret" in secret:
        basic = f"{secret['clientId']}:{secret['clientSecret']}".encode()
        found["the Basic credentials"] = base64.b64encode(basic).decode()
    for number, token in enumerate(sim.issued_tokens, 1):
        found[f"bearer token #{number}"] = token
    for number, header in enumerate(sim.authorizations, 1):
        found[f"Authorization header #{number}"] = header
        digest = _DIGEST_RESPONSE.search(header)
        if digest:
            found[f"Digest response #{number}"] = digest.group(1)
    return found


def leaks(haystacks: Mapping[str, str], needles: Mapping[str, str]) -> list[str]:
    """``"<what> in <where>"`` for every needle found in a haystack."""
    return [
        f"{label} in {where}"
        for where, text in haystacks.items()
        for label, value in needles.items()
        if value and value in text
    ]
