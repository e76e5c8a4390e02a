"""text -> item adaptation: candidate constructions of an item's text from its fields.

A construction says which item fields are used, how they are rendered (a natural-language
template, ``key: value`` pairs, or plain concatenation), which cleaners run on the values,
how items whose texts collide are told apart, and per-field and per-item token caps.
Constructions are plain dicts in RecBole yaml (``item_text_candidates``); see
``configs/recbole/upsr_text.yaml``.
"""

from __future__ import annotations

import html
import re
from collections import defaultdict
from dataclasses import dataclass, field

from recbole_ext.text.tokenizer import TextTokenizer

STYLES = ("natural", "key_value", "concat")
CLEANERS = ("markup", "null_values", "field_patterns", "trailing_year", "article_suffix")
DISAMBIGUATIONS = ("none", "attributes", "ordinal", "attributes+ordinal")

_TAG = re.compile(r"<[^>]{0,200}>")
_ENTITY = re.compile(r"&(#\d+|#x[0-9a-fA-F]+|[A-Za-z]+);")
_URL = re.compile(r"https?://\S+|www\.\S+")
_TRAILING_YEAR = re.compile(r"\s*\((1[89]|20)\d\d\)\s*$")
_OPTIONAL = re.compile(r"\[([^\[\]]*)\]")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass
class ItemTable:
    """Raw field values of every item, indexed by RecBole's internal item id.

    Args:
        dataset: Dataset name, for messages.
        item_tokens: The original item id of each internal id (index 0 is RecBole's padding).
        values: ``{field: [value per internal id]}``; a value is a string, a list of strings
            (``token_seq`` fields) or ``None`` when missing.
    """

    dataset: str
    item_tokens: list[str]
    values: dict[str, list]

    def __len__(self) -> int:
        return len(self.item_tokens)


@dataclass
class TextOptions:
    """Dataset-level text settings shared by all constructions (RecBole yaml keys).

    Args:
        fields: ``item_text_fields``: every item field a construction may use, in
            disambiguation order.
        null_values: ``text_null_values``: values meaning "missing" (case-insensitive).
        field_patterns: ``text_field_patterns``: ``{field: regex}`` a valid value matches.
        articles: ``text_articles``: articles moved back from "Title, The" form.
        ordinal_format: ``text_ordinal_format``: suffix telling apart otherwise identical
            items, ``{rank}`` is 1, 2, ... in original item-id order.
        field_labels: ``text_field_labels``: names shown by the ``key_value`` style.
        list_fields: ``text_list_fields``: ``token_seq`` fields holding several values
            (genres); other ``token_seq`` fields are word sequences (titles).
        empty_format: ``text_empty_item_format``: the text of an item none of whose used
            values survives cleaning (``{item_id}`` is its original id); counted as noise.
    """

    fields: list[str]
    null_values: list[str] = field(default_factory=list)
    field_patterns: dict[str, str] = field(default_factory=dict)
    articles: list[str] = field(default_factory=lambda: ["The", "A", "An"])
    ordinal_format: str = " #{rank}"
    field_labels: dict[str, str] = field(default_factory=dict)
    list_fields: list[str] = field(default_factory=list)
    empty_format: str = "unknown item {item_id}"

    @classmethod
    def from_config(cls, config) -> TextOptions:
        fields = _get(config, "item_text_fields")
        if not fields:
            raise ValueError("item_text_fields: list the item fields texts may be built from")
        return cls(
            fields=list(fields),
            # str(): yaml reads an unquoted null or none as None
            null_values=[str(v) for v in _get(config, "text_null_values") or []],
            field_patterns=dict(_get(config, "text_field_patterns") or {}),
            articles=list(_get(config, "text_articles") or ["The", "A", "An"]),
            ordinal_format=_get(config, "text_ordinal_format") or " #{rank}",
            field_labels=dict(_get(config, "text_field_labels") or {}),
            list_fields=list(_get(config, "text_list_fields") or []),
            empty_format=_get(config, "text_empty_item_format") or "unknown item {item_id}",
        )

    def label(self, name: str) -> str:
        return self.field_labels.get(name, name.replace("_", " "))


@dataclass
class ItemTextConstruction:
    """One candidate way of writing an item as text.

    Args:
        name: Short name used in reports and in ``text_stage_policy`` results.
        fields: Item fields used, in order.
        style: ``natural`` (``template``), ``key_value`` or ``concat``.
        template: For ``natural``: ``{field}`` placeholders; a ``[...]`` segment is dropped
            when a field inside it is missing, e.g. ``"{movie_title}[ ({release_year})]"``.
        clean: Cleaners applied to every value, from :data:`CLEANERS`.
        disambiguation: How items with identical texts are told apart: ``attributes``
            appends the first field of ``item_text_fields`` (not already used) whose values
            differ inside the group, ``ordinal`` appends ``text_ordinal_format``.
        max_field_tokens: Cap on the tokens of each field value (whole words kept).
        max_item_tokens: Cap on the tokens of the whole text (whole words kept).
    """

    name: str
    fields: list[str]
    style: str = "concat"
    template: str | None = None
    clean: list[str] = field(default_factory=list)
    disambiguation: str = "none"
    max_field_tokens: int | None = None
    max_item_tokens: int | None = None

    @classmethod
    def from_dict(cls, spec: dict, key: str = "item_text_candidates") -> ItemTextConstruction:
        where = check_spec_keys(cls, spec, key, required=("name", "fields"))
        construction = cls(**spec)
        construction.fields = list(construction.fields)
        construction.clean = list(construction.clean or [])
        if construction.style not in STYLES:
            raise ValueError(f"{where}.style: {construction.style!r} is not one of {STYLES}")
        if construction.style == "natural":
            if not construction.template:
                raise ValueError(f"{where}: style 'natural' needs a 'template'")
            used = set(_PLACEHOLDER.findall(construction.template))
            if used != set(construction.fields):
                raise ValueError(
                    f"{where}.template uses fields {sorted(used)} but 'fields' lists "
                    f"{sorted(construction.fields)}"
                )
        bad = [c for c in construction.clean if c not in CLEANERS]
        if bad:
            raise ValueError(f"{where}.clean: unknown cleaners {bad}; known: {CLEANERS}")
        if construction.disambiguation not in DISAMBIGUATIONS:
            raise ValueError(
                f"{where}.disambiguation: {construction.disambiguation!r} is not one of "
                f"{DISAMBIGUATIONS}"
            )
        for cap in ("max_field_tokens", "max_item_tokens"):
            value = getattr(construction, cap)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{where}.{cap}: expected a positive integer, got {value!r}")
        return construction


def check_spec_keys(cls, spec: dict, key: str, required: tuple[str, ...]) -> str:
    """Refuse unknown or missing keys of a construction dict; returns where it sits."""
    where = f"{key}[{spec.get('name', '?')!r}]"
    unknown = set(spec) - set(cls.__dataclass_fields__)
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    missing = [k for k in required if k not in spec]
    if missing:
        raise ValueError(f"{where}: {missing} required")
    return where


@dataclass
class ItemTexts:
    """The texts of one construction over an :class:`ItemTable`.

    ``texts[i]`` is the text of internal item ``i`` (``""`` for the padding id 0).
    ``used[i]`` maps each field present in the text to the raw value it came from, and
    ``noise[i]`` lists the noise found in those raw values (kept or cleaned).
    """

    construction: ItemTextConstruction
    texts: list[str]
    used: list[dict[str, object]]
    noise: list[list[str]]
    disambiguated: int = 0

    def collision_groups(self, items=None) -> list[list[int]]:
        """Groups (size > 1) of items whose texts are the same to the tokenizer."""
        return collision_groups(self.texts, items)


def collision_groups(texts: list[str], items=None) -> list[list[int]]:
    """Groups of internal ids (1.. or ``items``) with identical case-folded texts."""
    by_text: dict[str, list[int]] = defaultdict(list)
    for i in items if items is not None else range(1, len(texts)):
        by_text[normalise(texts[i])].append(i)
    return sorted((g for g in by_text.values() if len(g) > 1), key=lambda g: g[0])


def normalise(text: str) -> str:
    """What a lower-casing tokenizer sees: case-folded, single spaces."""
    return " ".join(text.casefold().split())


def _get(config, key):
    try:
        return config[key]
    except KeyError:
        return None


# ----------------------------------------------------------------------------- noise


def value_noise(value: str, field_name: str, options: TextOptions) -> list[str]:
    """Kinds of noise in one raw value (empty list: clean)."""
    found = []
    if _TAG.search(value) or _ENTITY.search(value) or _URL.search(value):
        found.append("markup")
    if value.strip().casefold() in {v.casefold() for v in options.null_values}:
        found.append("null_value")
    pattern = options.field_patterns.get(field_name)
    if pattern is not None and not re.fullmatch(pattern, value.strip()):
        found.append("pattern_mismatch")
    if _TRAILING_YEAR.search(value):
        found.append("trailing_year")
    if _article_suffix(value, options.articles) is not None:
        found.append("article_suffix")
    return found


def _article_suffix(value: str, articles: list[str]) -> str | None:
    """``"Devil's Own, The"`` -> ``"The Devil's Own"``; ``None`` if not in that form."""
    for article in articles:
        suffix = f", {article}"
        if value.endswith(suffix) and len(value) > len(suffix):
            return f"{article} {value[: -len(suffix)]}"
    return None


def clean_value(value: str, field_name: str, cleaners: list[str], options: TextOptions):
    """Apply ``cleaners`` in :data:`CLEANERS` order; ``None`` when the value is junk."""
    if "markup" in cleaners:
        value = _URL.sub(" ", _TAG.sub(" ", value))
        value = html.unescape(value)
    value = " ".join(value.split())
    if "null_values" in cleaners and value.casefold() in {
        v.casefold() for v in options.null_values
    }:
        return None
    pattern = options.field_patterns.get(field_name)
    if "field_patterns" in cleaners and pattern is not None and not re.fullmatch(pattern, value):
        return None
    if "trailing_year" in cleaners:
        value = _TRAILING_YEAR.sub("", value)
    if "article_suffix" in cleaners:
        value = _article_suffix(value, options.articles) or value
    return value or None


# ----------------------------------------------------------------------------- rendering


def _join_list(values: list[str], style: str) -> str:
    if style == "natural" and len(values) > 1:
        return ", ".join(values[:-1]) + " and " + values[-1]
    return ", ".join(values) if style == "key_value" else " ".join(values)


def _render(construction: ItemTextConstruction, parts: dict[str, str], options) -> str:
    if construction.style == "concat":
        return " ".join(parts[f] for f in construction.fields if f in parts)
    if construction.style == "key_value":
        return "; ".join(
            f"{options.label(f)}: {parts[f]}" for f in construction.fields if f in parts
        )

    def optional(match):
        inner = match.group(1)
        return inner if all(f in parts for f in _PLACEHOLDER.findall(inner)) else ""

    text = _OPTIONAL.sub(optional, construction.template)
    text = _PLACEHOLDER.sub(lambda m: parts.get(m.group(1), ""), text)
    return " ".join(text.split())


def build_item_texts(
    table: ItemTable,
    construction: ItemTextConstruction,
    options: TextOptions,
    tokenizer: TextTokenizer,
) -> ItemTexts:
    """Write every item of ``table`` as text under ``construction``."""
    check_fields(table, construction.fields, f"item_text_candidates[{construction.name!r}]")
    texts, used, noise = [""], [{}], [[]]
    for item in range(1, len(table)):
        parts: dict[str, str] = {}
        raw_used: dict[str, object] = {}
        item_noise: list[str] = []
        for name in construction.fields:
            raw = table.values[name][item]
            values = raw if isinstance(raw, list) else [raw]
            kept = []
            for value in values:
                if value is None or value == "":
                    continue
                item_noise += [f"{name}:{kind}" for kind in value_noise(value, name, options)]
                value = clean_value(value, name, construction.clean, options)
                if value is not None:
                    kept.append(value)
            if not kept:
                continue
            text = _join_list(kept, construction.style)
            if construction.max_field_tokens:
                text = tokenizer.truncate(text, construction.max_field_tokens)
            parts[name] = text
            raw_used[name] = raw
        text = _render(construction, parts, options)
        if not text:
            text = options.empty_format.format(item_id=table.item_tokens[item])
            item_noise.append("item:empty_text")
        if construction.max_item_tokens:
            text = tokenizer.truncate(text, construction.max_item_tokens)
        texts.append(text)
        used.append(raw_used)
        noise.append(item_noise)
    result = ItemTexts(construction, texts, used, noise)
    _disambiguate(result, table, options)
    return result


def _disambiguate(result: ItemTexts, table: ItemTable, options: TextOptions) -> None:
    """Tell apart items whose texts collide, as ``construction.disambiguation`` says.

    Deterministic: groups and ranks follow internal item ids, which RecBole assigns in
    order of first appearance in the atomic files, never dictionary or hash order.
    """
    mode = result.construction.disambiguation
    if mode == "none":
        return
    texts = result.texts
    changed: set[int] = set()
    if "attributes" in mode:
        spare = [f for f in options.fields if f not in result.construction.fields]
        for name in spare:
            for group in collision_groups(texts):
                rendered = {i: _plain(table.values[name][i]) for i in group}
                if len({v for v in rendered.values()}) < 2:
                    continue  # this field does not separate the group
                for i, value in rendered.items():
                    if value:
                        texts[i] = f"{texts[i]} ({value})"
                        changed.add(i)
    if "ordinal" in mode:
        for group in collision_groups(texts):
            for rank, i in enumerate(sorted(group, key=lambda i: _id_order(table, i)), 1):
                texts[i] += options.ordinal_format.format(rank=rank)
                changed.add(i)
    result.disambiguated = len(changed)


def _plain(value) -> str:
    if value is None:
        return ""
    return " ".join(value) if isinstance(value, list) else str(value)


def _id_order(table: ItemTable, item: int):
    token = table.item_tokens[item]
    return (0, int(token), token) if token.isdigit() else (1, 0, token)


def check_fields(table: ItemTable, fields: list[str], key: str) -> None:
    """Raise naming ``key`` when a field is not among the dataset's loaded item fields."""
    missing = [f for f in fields if f not in table.values]
    if missing:
        raise KeyError(
            f"{key}: item field(s) {missing} not found in dataset {table.dataset!r}; loaded "
            f"text fields: {sorted(table.values)}. Add them to load_col['item'] in the config."
        )
