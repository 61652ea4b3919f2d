"""Adds the proactive copilot to an existing Rasa bot, without clobbering what the team wrote.

The plan is made first and nothing is written if any step would overwrite the team's own
work (a file of theirs where ours goes, a slot of theirs with another definition); it says
what and stops. Otherwise, in the bot's folder:

* ``channels/``, ``addons/`` and the ``proactive_actions`` package are copied from this
  project. A manifest (``.proactive-copilot.json``) records what was copied, so a later run
  updates the copies the team has not edited and leaves edited ones alone;
* the domain gets the intents, entity, slot and actions the copilot needs (``COPILOT_DOMAIN``),
  added to what is there: nothing of the team's is changed or reordered (a ``domain/`` folder
  gets its own ``domain/copilot.yml``; what other files there define is not compared);
* ``data/copilot.yml`` holds the copilot's rules and NLU examples, beside the team's files;
* ``credentials.yml`` gets the copilot's channel and its socket.io channel (which replaces a
  plain ``socketio:`` block, keeping its settings);
* ``proactive.yml`` is written with production defaults, once: after that it is the team's.

Running it again changes nothing. YAML files are edited with ruamel's round trip, so the
team's comments and layout stay, and a file is only written when something is added to it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from io import StringIO
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

PROJECT = Path(__file__).resolve().parents[1]
SOURCE_BOT = PROJECT / "rasa-bot"
TEMPLATE = Path(__file__).resolve().parent / "proactive.yml"
MANIFEST = ".proactive-copilot.json"
ACTIONS_PACKAGE = "proactive_actions"  # ours, apart from the team's `actions` (their action server keeps it)
CHANNEL = "channels.proactive.ProactiveInput"
SOCKETIO = "channels.socketio.ProactiveSocketIOInput"

sys.path.insert(0, str(SOURCE_BOT))
from addons.domain import COPILOT_DOMAIN  # noqa: E402  (rasa-bot/ is not a package)


class AdoptionError(Exception):
    """The bot cannot take the copilot as it is; the message says what to change."""


@dataclass
class Change:
    path: str
    what: str

    def __str__(self) -> str:
        return f"{self.path}: {self.what}"


@dataclass
class Plan:
    """Everything the adoption would write, decided before anything is."""

    writes: Dict[Path, bytes] = field(default_factory=dict)
    changes: List[Change] = field(default_factory=list)
    conflicts: List[str] = field(default_factory=list)
    notices: List[str] = field(default_factory=list)  # left alone on purpose; not changes
    deletes: List[Path] = field(default_factory=list)
    manifest: Dict[str, str] = field(default_factory=dict)

    def write(self, path: Path, content: bytes, change: Change) -> None:
        self.writes[path] = content
        self.changes.append(change)


def adopt(bot: Path, *, validate: bool = True, out: Callable[[str], None] = print) -> List[Change]:
    """Plan, refuse on conflicts, write, validate; returns what changed."""
    bot = bot.resolve()
    plan = make_plan(bot)
    if plan.conflicts:
        raise AdoptionError(
            "nothing was changed; these would overwrite the bot's own work:\n  "
            + "\n  ".join(plan.conflicts)
        )
    # The copies first, the team's own files (domain, credentials) and the manifest last; each
    # file is written whole beside itself and moved into place, so none is ever half-written.
    for path in sorted(plan.writes, key=lambda p: (p.name in _TEAM_FILES or p.name == MANIFEST, str(p))):
        _write_atomically(path, plan.writes[path])
    for path in plan.deletes:
        path.unlink(missing_ok=True)
    for line in summary(plan.changes):
        out(f"  {line}")
    for notice in plan.notices:
        out(f"  {notice}")
    if not plan.changes:
        out("  nothing to change: the copilot is already in this bot")
    if validate:
        run_validate(bot, out)
    return plan.changes


def summary(changes: List[Change]) -> List[str]:
    """One line per change, files created in a folder counted on one line."""
    def folder(change: Change) -> str:
        return change.path.split("/", 1)[0] if change.what == "created" and "/" in change.path else ""

    created: Dict[str, int] = {}
    for change in changes:
        created[folder(change)] = created.get(folder(change), 0) + 1
    grouped = [f"{name}/: {n} files created" for name, n in created.items() if name and n > 1]
    return grouped + [str(c) for c in changes if not folder(c) or created[folder(c)] == 1]


def make_plan(bot: Path) -> Plan:
    domain = bot / "domain.yml"
    if not (bot / "config.yml").is_file() or not (domain.is_file() or (bot / "domain").is_dir()):
        raise AdoptionError(f"{bot} is not a Rasa project: it needs config.yml and domain.yml (or domain/)")
    plan = Plan()
    previous = _read_manifest(bot)
    for source, target in _copied_files(bot):
        _plan_copy(plan, bot, source, target, previous)
    for target, digest in previous.items():
        path = bot / target
        if target not in plan.manifest and path.is_file() and _sha256(path.read_bytes()) == digest:
            plan.deletes.append(path)  # shipped before, no longer: an unedited copy goes
            plan.changes.append(Change(target, "removed (no longer part of the copilot)"))
    if plan.manifest != previous:
        manifest = json.dumps({"files": plan.manifest}, indent=2, sort_keys=True) + "\n"
        plan.writes[bot / MANIFEST] = manifest.encode()
    if domain.is_file():
        _plan_domain(plan, bot, domain)
    else:
        _plan_domain(plan, bot, bot / "domain" / "copilot.yml")
    _plan_credentials(plan, bot)
    if not (bot / "proactive.yml").exists():
        product_id = re.sub(r"[^A-Za-z0-9_-]+", "-", bot.name).strip("-") or "my-app"
        text = TEMPLATE.read_text(encoding="utf-8").replace("PRODUCT_ID", product_id)
        plan.write(bot / "proactive.yml", text.encode(), Change("proactive.yml", "written with production defaults"))
    return plan


# -- files ------------------------------------------------------------------------------


def _copied_files(bot: Path) -> List[Tuple[Path, str]]:
    """(source, path in the bot) of every file the copilot brings."""
    files = []
    for source in sorted((SOURCE_BOT / "addons").rglob("*.py")):
        files.append((source, str(source.relative_to(SOURCE_BOT))))
    for name in ("__init__.py", "proactive.py", "socketio.py"):
        files.append((SOURCE_BOT / "channels" / name, f"channels/{name}"))
    for name in ("__init__.py", "proactive.py", "grounded.py"):
        files.append((SOURCE_BOT / "actions" / name, f"{ACTIONS_PACKAGE}/{name}"))
    files.append((SOURCE_BOT / "data" / "copilot.yml", "data/copilot.yml"))
    return files


def _plan_copy(plan: Plan, bot: Path, source: Path, target: str, previous: Dict[str, str]) -> None:
    content = source.read_bytes()
    digest = _sha256(content)
    path = bot / target
    if not path.exists():
        plan.manifest[target] = digest
        plan.write(path, content, Change(target, "created"))
        return
    current = path.read_bytes()
    if current == content:
        plan.manifest[target] = digest
        return
    if previous.get(target) == _sha256(current):  # our copy, untouched since: an update
        plan.manifest[target] = digest
        plan.write(path, content, Change(target, "updated"))
        return
    if target in previous:  # our copy, edited by the team: theirs now
        plan.manifest[target] = previous[target]
        plan.notices.append(f"{target}: edited since it was copied; left as it is")
        return
    if path.name == "__init__.py":
        return  # the team's package marker serves as well as ours
    plan.conflicts.append(f"{target} exists and is not the copilot's")


_TEAM_FILES = ("domain.yml", "credentials.yml")


def _write_atomically(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.adopting")
    staged.write_bytes(content)
    os.replace(staged, path)


def _read_manifest(bot: Path) -> Dict[str, str]:
    try:
        files = json.loads((bot / MANIFEST).read_text(encoding="utf-8"))["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {str(k): str(v) for k, v in files.items()} if isinstance(files, dict) else {}


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


# -- YAML merges ------------------------------------------------------------------------


def _yaml() -> YAML:
    yaml = YAML()  # round trip: comments, order and quotes stay as the team wrote them
    yaml.preserve_quotes = True  # type: ignore[assignment]
    yaml.width = 4096  # type: ignore[assignment]
    return yaml


def _load(path: Path) -> CommentedMap:
    if not path.exists():
        return CommentedMap()
    data = _yaml().load(path.read_text(encoding="utf-8"))
    if data is None:
        return CommentedMap()
    if not isinstance(data, CommentedMap):
        raise AdoptionError(f"{path.name} is not a YAML mapping")
    return data


def _dump(data: CommentedMap) -> bytes:
    stream = StringIO()
    _yaml().dump(data, stream)
    return stream.getvalue().encode()


def _plan_domain(plan: Plan, bot: Path, domain: Path) -> None:
    ours = _load(SOURCE_BOT / "domain.yml")
    text = domain.read_text(encoding="utf-8") if domain.exists() else f'version: "{ours.get("version", "3.1")}"\n'
    theirs = _load(domain)
    merged = _load(domain) if theirs else CommentedMap(version=ours.get("version", "3.1"))
    edits: List[Callable[[str], str]] = []
    added: List[str] = []
    for section, singular in (("intents", "intent"), ("entities", "entity"), ("actions", "action")):
        present = {_item_name(i) for i in theirs.get(section) or ()}
        missing = [name for name in COPILOT_DOMAIN[section] if name not in present]
        if missing:
            if merged.get(section) is None:  # absent, or written with nothing under it
                merged[section] = CommentedSeq()
            merged[section].extend(missing)
            edits.append(functools.partial(_add_list_items, section=section, names=missing))
            added += [f"{singular} {name}" for name in missing]
    for name in COPILOT_DOMAIN["slots"]:
        slot = ours["slots"][name]
        if name not in (theirs.get("slots") or {}):
            if merged.get("slots") is None:
                merged["slots"] = CommentedMap()
            merged["slots"][name] = slot
            edits.append(functools.partial(_add_mapping_entry, section="slots", key=name, value=slot))
            added.append(f"slot {name}")
        elif _plain(theirs["slots"][name]) != _plain(slot):
            plan.conflicts.append(f"{domain.relative_to(bot)}: slot {name} is defined differently from the copilot's")
    if added:
        try:
            for edit in edits:
                text = edit(text)
        except _NotBlockStyle:
            text = _dump(merged).decode()
        plan.write(domain, _checked(text, merged, domain), Change(str(domain.relative_to(bot)), "added " + ", ".join(added)))


def _plan_credentials(plan: Plan, bot: Path) -> None:
    path = bot / "credentials.yml"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    theirs = _load(path)
    source = _load(SOURCE_BOT / "credentials.yml")
    added: List[str] = []
    if SOCKETIO not in theirs:
        if "socketio" in theirs:
            # Both are named "socketio": ours replaces it, keeping its settings (their values win).
            stock = theirs.pop("socketio")
            block = CommentedMap(source[SOCKETIO])
            block.update(stock if isinstance(stock, dict) else {})
            block["session_persistence"] = True  # the copilot injects into the widget's persistent session
            theirs[SOCKETIO] = block
            text = _dump(theirs).decode()
            added.append(f"socketio → {SOCKETIO} (same name, its settings kept)")
        else:
            text = _append_block(text, _source_block(SOCKETIO))
            theirs[SOCKETIO] = source[SOCKETIO]
            added.append(SOCKETIO)
    if CHANNEL not in theirs:
        channel = re.sub(r"(?m)^(\s+actions_package:\s*)\S+", rf"\g<1>{ACTIONS_PACKAGE}", _source_block(CHANNEL))
        text = _append_block(text, channel)
        theirs[CHANNEL] = CommentedMap(source[CHANNEL])
        theirs[CHANNEL]["actions_package"] = ACTIONS_PACKAGE
        added.append(CHANNEL)
    if added:
        plan.write(path, _checked(text, theirs, path), Change("credentials.yml", "added " + ", ".join(added)))


# Edits are made to the text, so the rest of the file stays byte for byte as the team wrote it
# (a YAML dump would re-indent their lists); ``_checked`` proves the edit parses as intended.


def _add_list_items(text: str, section: str, names: List[str]) -> str:
    lines = text.splitlines(keepends=True)
    start = _section_start(lines, section)
    if start is None:
        return _append_block(text, f"{section}:\n" + "".join(f"  - {name}\n" for name in names))
    last, indent = _block_end(lines, start)
    if indent is None:
        indent = "  "
    items = "".join(f"{indent}- {name}\n" for name in names)
    return "".join(lines[: last + 1]) + items + "".join(lines[last + 1 :])


def _add_mapping_entry(text: str, section: str, key: str, value: Any) -> str:
    lines = text.splitlines(keepends=True)
    start = _section_start(lines, section)
    if start is None:
        return _append_block(text, f"{section}:\n" + _indented({key: value}, "  "))
    last, _ = _block_end(lines, start)
    indent = next((re.match(r"\s*", line).group(0) for line in lines[start + 1 : last + 1]  # type: ignore[union-attr]
                   if line.strip() and not line.lstrip().startswith("#")), "  ")
    return "".join(lines[: last + 1]) + _indented({key: value}, indent) + "".join(lines[last + 1 :])


def _section_start(lines: List[str], section: str) -> Optional[int]:
    """The line a top-level block section starts on; None if the file has none (one in flow
    style, ``intents: [a, b]``, cannot be edited as text: ``_NotBlockStyle``)."""
    start = next((i for i, line in enumerate(lines) if re.match(rf"{section}:\s*(#.*)?$", line)), None)
    if start is None and any(line.startswith(f"{section}:") for line in lines):
        raise _NotBlockStyle(section)
    return start


def _block_end(lines: List[str], start: int) -> Tuple[int, Optional[str]]:
    """The last line of the top-level block that starts at ``start``, and its list indent."""
    last, indent = start, None
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line.startswith((" ", "-")):
            break
        item = re.match(r"(\s*)- ", line)
        if item and indent is None:
            indent = item.group(1)
        last = i
    return last, indent


def _append_block(text: str, block: str) -> str:
    if text and not text.endswith("\n"):
        text += "\n"
    return text + ("\n" if text else "") + block


def _indented(value: Any, indent: str) -> str:
    return "".join(indent + line if line.strip() else line for line in _dump(value).decode().splitlines(keepends=True))


def _source_block(key: str) -> str:
    """A top-level block of the demo bot's credentials.yml as written there, with its comments."""
    lines = (SOURCE_BOT / "credentials.yml").read_text(encoding="utf-8").splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith(f"{key}:"))
    first = start
    while first > 0 and lines[first - 1].startswith("#"):
        first -= 1
    last, _ = _block_end(lines, start)
    return "".join(lines[first : last + 1])


class _NotBlockStyle(Exception):
    """A section written in flow style (``intents: [a, b]``): no text edit, a YAML dump instead."""


def _checked(text: str, expected: Any, path: Path) -> bytes:
    """The edited text, once it is known to parse to exactly the merged structure."""
    try:
        parsed = _yaml().load(text)
    except Exception as e:  # ruamel's errors have no common base worth naming here
        raise AdoptionError(f"editing {path.name} gave invalid YAML ({e}); nothing was changed") from e
    if _plain(parsed) != _plain(expected):
        raise AdoptionError(f"editing {path.name} would not give the intended result; nothing was changed")
    return text.encode()


def _item_name(item: Any) -> str:
    """A domain list item: a name, or a one-key mapping of a name to its options."""
    if isinstance(item, dict) and len(item) == 1:
        return str(next(iter(item)))
    return str(item)


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


# -- validation -------------------------------------------------------------------------


def run_validate(bot: Path, out: Callable[[str], None]) -> None:
    """``rasa data validate`` over the result, with the Rasa of this environment."""
    rasa = Path(sys.executable).with_name("rasa")
    command = [str(rasa) if rasa.exists() else "rasa", "data", "validate"]
    result = subprocess.run(command, cwd=bot, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise AdoptionError(f"`rasa data validate` failed in {bot} (the changes listed above were made):\n{tail}")
    out("  rasa data validate: passed")
