"""Check ``proactive.yml`` and report every problem at file:line, not only the first.

``parse_config`` stops at the first wrong value and knows no line numbers. Here the file is
read with ruamel.yaml's round-trip loader, which keeps them, and checked for what
``parse_config`` lets through (unknown keys, references to undefined tours, a trigger with
no how-to, how-to UI names missing from the vocabulary); then ``parse_config`` itself runs on
each section, tour and trigger separately, so one wrong value does not hide the next.

The known keys are read from the dataclasses of ``addons.config``, never listed twice.

    python -m addons.checks validate [PATH]     # from rasa-bot/; PATH defaults to proactive.yml
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import difflib
import functools
import re
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Set, Tuple, Union

import yaml
from autoplay_sdk.proactive.triggers.builtin_catalog import BUILTIN_TRIGGER_CATALOG
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import YAMLError

from addons import urls
from addons.answers.guard import UIGuard, quoted_labels
from addons.config import TRIGGER_TYPES, ConfigError, ProactiveConfig, parse_config

DEFAULT_PATH = "proactive.yml"

# A key path into the YAML tree: mapping keys and list indexes, ("triggers", 0, "tours").
KeyPath = Tuple[Union[str, int], ...]
# A problem before it has a line: where in the tree, and what is wrong.
Finding = Tuple[KeyPath, str]


@dataclass(frozen=True)
class Problem:
    """One thing wrong in the file: where (1-based line, key path) and what to change."""

    file: str
    line: Optional[int]  # None: the file as a whole (it could not be read)
    key: str  # "triggers[0].tours[1]"; "" when the problem is not under one key
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class InvalidConfig(ConfigError):
    """``proactive.yml`` has problems; the message lists each at file:line, one per line."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = tuple(problems)


def validate_file(path: Union[str, Path]) -> List[Problem]:
    """Every problem in a proactive config file (empty when there is none)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return [Problem(str(path), None, "", f"cannot read it: {error}")]
    return validate_data(text, str(path))


def validate_data(text: str, source: str = DEFAULT_PATH) -> List[Problem]:
    """Every problem in the text of a proactive config; ``source`` names it in the problems."""
    try:
        tree = YAML(typ="rt").load(text)
        # What load_config hands parse_config, so values read as the server will read them
        # (YAML 1.1: `enabled: yes` is true there, the string "yes" to ruamel).
        raw = yaml.safe_load(text)
    except (YAMLError, yaml.YAMLError) as error:
        return [_malformed(source, text, error)]
    except RecursionError:  # nested deeper than the parsers go
        return [Problem(source, None, "", "nested too deeply to read")]
    own = [
        *_shape_findings(tree, ProactiveConfig, ()),
        *_duplicate_id_findings(tree),
        *_trigger_findings(tree),
    ]
    reported = {path for path, _ in own}
    findings = own + [f for f in _config_findings(raw) if f[0] not in reported]
    problems = [Problem(source, _line_of(tree, path), _format_path(path), message) for path, message in findings]
    return sorted(problems, key=lambda p: p.line or 0)


def raise_if_invalid(path: Union[str, Path]) -> None:
    """Refuse to start on a config with any problem, naming them all."""
    problems = validate_file(path)
    if problems:
        raise InvalidConfig(problems)


def page_pattern_problem(pattern: object) -> Optional[str]:
    """What is wrong with a page pattern (None when nothing is). The rules are the matcher's,
    in ``addons.urls``: a path from "/", where "*" is one segment, "**" any number of them
    and ":name" a path parameter."""
    if not isinstance(pattern, str):
        return f"expected a page pattern (a path like '/projects'), got {_quote(pattern)}"
    return urls.page_pattern_problem(pattern.strip()) or None  # parse_config strips it too


def main(argv: Optional[List[str]] = None) -> int:
    """``validate [PATH]``: print every problem; exit status 1 if there is any."""
    parser = argparse.ArgumentParser(
        prog="python -m addons.checks validate", description="Report every problem in proactive.yml, at file:line."
    )
    parser.add_argument("path", nargs="?", default=DEFAULT_PATH, help=f"the config file (default: {DEFAULT_PATH})")
    args = parser.parse_args(argv)
    problems = validate_file(args.path)
    for problem in problems:
        print(problem)
    if problems:
        return 1
    print(f"{args.path}: ok")
    return 0


# -- the keys the dataclasses of addons.config define ----------------------------------------

_TRIGGER_TAG = "type"  # a trigger's key that selects its dataclass; not a field of any


@functools.lru_cache(maxsize=None)
def _field_types(cls: type) -> Dict[str, Any]:
    """A config dataclass's fields and their (resolved) annotations."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _dataclass_of(annotation: Any, node: Any) -> Optional[type]:
    """The dataclass a YAML mapping annotated so is read into (None: not a dataclass)."""
    members = [annotation]
    if typing.get_origin(annotation) is Union:
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
    if len(members) == 1 and isinstance(members[0], type) and dataclasses.is_dataclass(members[0]):
        return members[0]
    # The one union of several dataclasses is TriggerConfig, whose `type` names the member.
    if members and all(dataclasses.is_dataclass(m) for m in members) and isinstance(node, dict):
        kind = node.get(_TRIGGER_TAG)
        return TRIGGER_TYPES.get(kind) if isinstance(kind, str) else None
    return None


def _item_annotation(annotation: Any) -> Any:
    """X for Tuple[X, ...] (a YAML list of X); None for anything else."""
    arguments = typing.get_args(annotation)
    if typing.get_origin(annotation) is tuple and len(arguments) == 2 and arguments[1] is Ellipsis:
        return arguments[0]
    return None


def _annotation_at(path: KeyPath, node: Any) -> Any:
    """The annotation of the value at ``path`` in a plain YAML tree (None: no field there)."""
    annotation: Any = ProactiveConfig
    for step in path:
        if isinstance(step, int):
            annotation = _item_annotation(annotation)
        else:
            cls = _dataclass_of(annotation, node)
            annotation = _field_types(cls).get(step) if cls is not None else None
        node = _child(node, step)
        if annotation is None:
            return None
    return annotation


def _child(node: Any, step: Union[str, int]) -> Any:
    """The value one step down a YAML tree (None: nothing there)."""
    if isinstance(node, dict) and isinstance(step, str):
        return node.get(step)
    if isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
        return node[step]
    return None


# -- checks on the round-trip tree --------------------------------------------------------------

_PAGE_KEY = "page"


def _shape_findings(node: Any, annotation: Any, path: KeyPath) -> Iterator[Finding]:
    """Unknown keys and bad page patterns, at every level the dataclasses describe."""
    cls = _dataclass_of(annotation, node)
    if cls is not None and isinstance(node, dict):
        fields = _field_types(cls)
        known = set(fields) | ({_TRIGGER_TAG} if cls in TRIGGER_TYPES.values() else set())
        for key, value in node.items():
            name = key if isinstance(key, str) else repr(key)
            if name not in known:
                yield path + (name,), _unknown_key_message(key, known)
            elif name == _PAGE_KEY:
                problem = page_pattern_problem(value)
                if problem:
                    yield path + (name,), problem
            elif name in fields:  # not the trigger's `type`, a tag with nothing below it
                yield from _shape_findings(value, fields[name], path + (name,))
        return
    item = _item_annotation(annotation)
    if item is not None and isinstance(node, list):
        for index, child in enumerate(node):
            yield from _shape_findings(child, item, path + (index,))


def _unknown_key_message(key: object, known: Set[str]) -> str:
    close = difflib.get_close_matches(str(key), sorted(known), n=1)
    hint = f"did you mean {close[0]!r}?" if close else "known keys: " + ", ".join(sorted(known))
    return f"unknown key {_quote(key)}; {hint}"


def _items(tree: Any, section: str) -> List[Tuple[int, CommentedMap]]:
    """The mappings of a top-level list (tours, triggers) with their indexes; others are
    parse_config's to report."""
    items = tree.get(section) if isinstance(tree, dict) else None
    if not isinstance(items, list):
        return []
    return [(index, item) for index, item in enumerate(items) if isinstance(item, CommentedMap)]


def _stripped_id(item: CommentedMap) -> Optional[str]:
    """The item's id as parse_config reads it (stripped); None for none, which it reports."""
    value = item.get("id")
    return (value.strip() or None) if isinstance(value, str) else None


def _duplicate_id_findings(tree: Any) -> Iterator[Finding]:
    for section in ("tours", "triggers"):
        first_index: Dict[str, int] = {}
        for index, item in _items(tree, section):
            item_id = _stripped_id(item)
            if item_id is not None and item_id in first_index:
                yield (section, index, "id"), f"duplicate id {_quote(item_id)}; {section}[{first_index[item_id]}] has it too"
            elif item_id is not None:
                first_index[item_id] = index


def _trigger_findings(tree: Any) -> Iterator[Finding]:
    """Tours a trigger names but nobody defined, a missing how-to, and how-to UI names the
    chat's vocabulary lacks (the guard would reject an answer that quotes them)."""
    tour_ids = sorted({i for i in (_stripped_id(item) for _, item in _items(tree, "tours")) if i is not None})
    known_tours = f"known: {tour_ids}" if tour_ids else "no tours are defined under 'tours'"
    guard = UIGuard(_vocabulary(tree))
    for index, trigger in _items(tree, "triggers"):
        builtin = trigger.get("id") if trigger.get("type") == "builtin" else None
        if isinstance(builtin, str) and builtin.strip() not in BUILTIN_TRIGGER_CATALOG:
            yield ("triggers", index, "id"), (
                f"no autoplay-sdk built-in trigger {_quote(builtin)}; the built-ins are {sorted(BUILTIN_TRIGGER_CATALOG)}"
            )
        references = trigger.get("tours")
        if isinstance(references, list):
            for position, reference in enumerate(references):
                if isinstance(reference, str) and reference.strip() and reference.strip() not in tour_ids:
                    yield ("triggers", index, "tours", position), f"unknown tour {_quote(reference)}; {known_tours}"
        steps = trigger.get("how_to")
        if steps is None:
            yield ("triggers", index, "how_to"), (
                "missing: the chat's follow-up explains the faster way from these steps; add how_to, a list of steps"
            )
        elif isinstance(steps, list):
            for position, step in enumerate(steps):
                for label in quoted_labels(step) if isinstance(step, str) else ():
                    if not guard.known(label):
                        yield ("triggers", index, "how_to", position), (
                            f"UI name {_quote(label)} is not in chat.ui_vocabulary; add it there, or correct the name"
                        )


def _vocabulary(tree: Any) -> List[str]:
    chat = tree.get("chat") if isinstance(tree, dict) else None
    names = chat.get("ui_vocabulary") if isinstance(chat, dict) else None
    return [name for name in names if isinstance(name, str)] if isinstance(names, list) else []


# -- parse_config's own verdicts ----------------------------------------------------------------

_SOURCE = "<config>"  # what parse_config's messages start with; replaced by a line number
_SKELETON: Dict[str, Any] = {"product_id": "placeholder"}  # the least parse_config accepts
_LISTS = ("tours", "triggers")
_CONFIG_ERROR = re.compile(r"(?:\.(?P<path>[^:\s]+))?: (?P<message>.*)", re.DOTALL)
# Valid stand-ins for a wrong value parse_config cannot do without; "/" is also a valid page.
_PLACEHOLDERS: Dict[Any, Any] = {
    str: "/",
    Optional[str]: "/",
    int: 1,
    float: 1.0,
    bool: False,
    Tuple[str, ...]: ["/"],
}


def _config_findings(raw: Any) -> Iterator[Finding]:
    """What parse_config rejects: the sections together, then each tour and trigger on its own,
    so a bad item does not hide the next one."""
    if not isinstance(raw, dict):
        yield from _parse_findings(raw, _unchanged)
        return
    sections = {key: value for key, value in raw.items() if not (key in _LISTS and isinstance(value, list))}
    yield from _parse_findings(copy.deepcopy(sections), _unchanged)
    for section in _LISTS:
        items = raw.get(section)
        for index, item in enumerate(items if isinstance(items, list) else []):
            item = copy.deepcopy(item)
            if section == "triggers" and isinstance(item, dict):
                _drop_tour_references(item)
            yield from _parse_findings({**_SKELETON, section: [item]}, functools.partial(_renumbered, section, index))


def _drop_tour_references(trigger: Dict[str, Any]) -> None:
    """A trigger run alone has no tours to name: its well-formed references are checked
    against all the file's tours by _trigger_findings instead."""
    references = trigger.get("tours")
    if isinstance(references, list) and references and all(isinstance(r, str) and r.strip() for r in references):
        del trigger["tours"]


def _unchanged(path: KeyPath) -> KeyPath:
    return path


def _renumbered(section: str, index: int, path: KeyPath) -> KeyPath:
    """A path in a one-item run ("triggers", 0, …) as the item's path in the file."""
    return (section, index) + path[2:] if path[:2] == (section, 0) else path


def _parse_findings(doc: Any, to_file_path: Callable[[KeyPath], KeyPath]) -> Iterator[Finding]:
    """Run parse_config until it passes, setting each wrong value aside to find the next."""
    set_aside: Set[KeyPath] = set()
    while True:
        try:
            parse_config(doc, source=_SOURCE)
            return
        except ConfigError as error:
            path, message = _split_config_error(str(error))
            if path in set_aside:  # a required value it cannot do without: the rest stays unchecked
                return
            yield to_file_path(path), message
            if not _set_aside(doc, path):
                return
            set_aside.add(path)


def _split_config_error(text: str) -> Tuple[KeyPath, str]:
    """("tours", 0, "page") and the rest, from "<config>.tours[0].page: expected …"."""
    match = _CONFIG_ERROR.fullmatch(text[len(_SOURCE) :]) if text.startswith(_SOURCE) else None
    if match is None:
        return (), text
    steps = re.findall(r"\[(\d+)\]|([^.\[\]]+)", match["path"] or "")
    return tuple(int(index) if index else name for index, name in steps), match["message"]


def _set_aside(doc: Any, path: KeyPath) -> bool:
    """Replace the wrong value with a valid stand-in or, with none, remove it (parse_config then
    takes its default). False when there is no key to change."""
    parent: Any = doc
    for step in path[:-1]:
        parent = _child(parent, step)
    if not path or not isinstance(parent, dict) or not isinstance(path[-1], str):
        return False
    annotation = _annotation_at(path, doc)
    if annotation in _PLACEHOLDERS:
        parent[path[-1]] = copy.deepcopy(_PLACEHOLDERS[annotation])
    else:
        parent.pop(path[-1], None)
    return True


# -- from findings to problems -------------------------------------------------------------------


def _line_of(tree: Any, path: KeyPath) -> int:
    """The 1-based line of the key at ``path``, or of the nearest enclosing one that exists
    (a missing key is reported where it belongs); 1 for the file as a whole."""
    line, node = 1, tree
    for step in path:
        try:
            if isinstance(node, CommentedMap) and isinstance(step, str):
                line = node.lc.key(step)[0] + 1
            elif isinstance(node, CommentedSeq) and isinstance(step, int):
                line = node.lc.item(step)[0] + 1
            else:
                break
        except KeyError:  # missing, or merged in with "<<:" (its line is the anchor's)
            break
        node = node[step]
    return line


def _format_path(path: KeyPath) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else (f".{step}" if text else step)
    return text


def _malformed(source: str, text: str, error: Exception) -> Problem:
    """One problem for text that is not YAML, at the line the parser stopped on."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None)
    if mark is not None and problem is not None:
        context = getattr(error, "context", None)
        return Problem(source, mark.line + 1, "", f"not valid YAML: {problem}" + (f" ({context})" if context else ""))
    # The reader (a character YAML does not allow) gives an offset instead of a mark.
    position = getattr(error, "position", None)
    line = text.count("\n", 0, position) + 1 if isinstance(position, int) else 1
    return Problem(source, line, "", "not valid YAML: " + " ".join(str(error).split()))


def _quote(value: object) -> str:
    """A value as it can be shown in a message: repr, cut short."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
