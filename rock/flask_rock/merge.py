"""Merging the extension's snippet into the user's rockcraft.yaml, key by key.

The rules are Rockcraft's:

- the user has no value (absent or any falsy value: null, empty, ``0``, ``false``)
  -> the extension's value;
- both are mappings -> merged recursively, the user's keys keeping their place;
- both are lists -> extension items then user items, de-duplicated (first occurrence kept)
  only when every item is a string;
- otherwise -> the user's value wins.
"""

import copy
from typing import Any


def _dedup_strings(items: list[Any]) -> list[Any]:
    if not all(isinstance(item, str) for item in items):
        return items
    return list(dict.fromkeys(items))


def merge_value(user: Any, extension: Any) -> Any:
    """Return the merge of a user value with the extension's value (inputs are not modified)."""
    if not user:
        return copy.deepcopy(extension)
    if isinstance(user, list) and isinstance(extension, list):
        return _dedup_strings(copy.deepcopy(extension + user))
    if isinstance(user, dict) and isinstance(extension, dict):
        merged = copy.deepcopy(user)
        for key, value in extension.items():
            merged[key] = merge_value(user.get(key), value)
        return merged
    return copy.deepcopy(user)


def merge_document(document: dict[str, Any], snippet: dict[str, Any]) -> dict[str, Any]:
    """Merge the extension's root snippet into a user document and return a new document."""
    return merge_value(document, snippet)
