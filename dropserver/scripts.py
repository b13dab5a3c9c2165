"""Loading the Lua scripts in ``lua/``.

A top-level ``lua/<name>.lua`` is one Redis script. Shared helpers live in ``lua/include/`` as
``local function`` definitions and are spliced in where a script says ``--- @include "<name>"``
(the layout BullMQ uses), so the body sent to Redis is still one self-contained script and the
source is never generated at run time from request data.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

LUA_DIR = Path(__file__).resolve().parent.parent / "lua"
_INCLUDE = re.compile(r'^--- @include "([a-z0-9_]+)"[ \t]*$', re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    source: bytes
    sha: str


def _expand(source: str, include_dir: Path, seen: set[str]) -> str:
    def splice(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in seen:
            return ""
        seen.add(name)
        return _expand((include_dir / f"{name}.lua").read_text(), include_dir, seen)

    return _INCLUDE.sub(splice, source)


def load_script(
    name: str, lua_dir: Path = LUA_DIR, include_dir: Path = LUA_DIR / "include"
) -> Script:
    """``lua_dir/<name>.lua`` with its includes from ``include_dir`` spliced in."""
    text = _expand((lua_dir / f"{name}.lua").read_text(), include_dir, set())
    source = text.encode()
    return Script(name=name, source=source, sha=hashlib.sha1(source).hexdigest())


def load_all(lua_dir: Path = LUA_DIR) -> dict[str, Script]:
    """Every top-level script, by name."""
    return {p.stem: load_script(p.stem, lua_dir) for p in sorted(lua_dir.glob("*.lua"))}
