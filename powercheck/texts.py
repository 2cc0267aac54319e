"""Texts in English and Norwegian bokmål from one template file (``texts.toml``).

A :class:`~powercheck.models.Message` is a template key and its parameters; :func:`render` turns
it into text in a language. Decisions keep their messages, so a stored decision can be shown in
either language (:func:`localize`). Parameters that are themselves messages (e.g. the "text" of
"missing {text}") are rendered first.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Any

from powercheck.models import Message, make_message

LANGUAGES = ("en", "nb")
DEFAULT_LANGUAGE = "en"


@cache
def _templates() -> dict[str, Any]:
    text = resources.files("powercheck").joinpath("texts.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def language(value: str | None) -> str:
    """The supported language for a ``--lang`` value or an ``Accept-Language`` header (default en)."""
    if not value:
        return DEFAULT_LANGUAGE
    for part in value.split(","):
        tag = part.split(";")[0].strip().lower()
        if tag in ("nb", "no", "nn") or tag.startswith(("nb-", "no-", "nn-")):
            return "nb"
        if tag == "en" or tag.startswith("en-"):
            return "en"
    return DEFAULT_LANGUAGE


@cache  # the template file never changes while running; a key without a template raises and is not kept
def template(key: str, lang: str) -> str:
    """The template of a dotted key (``title.PQ.RVC`` style keys use the first dot only)."""
    table = _templates()
    head, _, rest = key.partition(".")
    node = table[head] if not rest else table[head][rest]
    return node[lang]


def label(name: str, lang: str) -> str:
    return _templates()["label"][lang][name]


def title(rule_id: str, lang: str) -> str:
    """The short title of a rule id."""
    entry = _templates()["title"].get(rule_id)
    return entry[lang] if entry else rule_id


def _value(value: Any, lang: str) -> Any:
    kind = type(value)
    if kind is str or kind is float or kind is int:  # the common parameters: as they are
        return value
    if isinstance(value, Message):
        return render(value, lang)
    if isinstance(value, dict) and "key" in value and "params" in value:
        return render(Message.model_validate(value), lang)
    if isinstance(value, list):
        return "; ".join(str(_value(v, lang)) for v in value)
    return value


def render(message: Message, lang: str = DEFAULT_LANGUAGE) -> str:
    """The message in ``lang`` (en or nb)."""
    params = {k: _value(v, lang) for k, v in message.params.items()}
    if message.key.startswith("check_failed") and "rule" in params:
        params.setdefault("title", title(str(params["rule"]), lang))
    return template(message.key, lang).format(**params)


_CHECKED_KEYS: set[str] = set()
"""Message keys whose template :func:`msg` has found."""


def msg(key: str, **params: Any) -> Message:
    """A message (the template must exist)."""
    if key not in _CHECKED_KEYS:
        template(key, DEFAULT_LANGUAGE)
        _CHECKED_KEYS.add(key)
    return make_message(key, params)


def localize(decision, lang: str):
    """The decision with its reasons, conditions and measures rendered in ``lang``."""
    if lang == decision.language or not decision.messages:
        return decision
    measures = [
        m.model_copy(update={"text": render(m.message, lang), "effect": render(m.effect_message, lang)})
        for m in decision.measures
    ]
    return decision.model_copy(
        update={
            "language": lang,
            "reasons": [render(m, lang) for m in decision.messages],
            "conditions": [render(m, lang) for m in decision.condition_messages],
            "measures": measures,
        }
    )
