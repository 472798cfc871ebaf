"""Server-side request validation driven by botocore's own service models (``ivschat``, ``ivs``).

boto3 checks required members and minimums before sending; the service checks everything:
maximums, patterns, enums, list and map sizes. Reading the constraints from the model keeps the
sandbox in step with botocore releases. Rules the model cannot express are added by name below.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from functools import cache
from typing import Any

import botocore.session
from botocore.model import OperationModel, ServiceModel, Shape

from ivs_widgets.protocol.facts import MAX_ATTRIBUTES_BYTES, MAX_METADATA_BYTES
from ivs_widgets.protocol.rules import attributes_bytes, attributes_fit, is_unicode
from ivs_widgets.sandbox.core.errors import ApiError, validation_error

#: Shapes whose modeled pattern is known to be wrong (a one-character resource type); the ARN
#: rule of the service that pattern names checks them instead.
_UNRELIABLE_PATTERNS = {"ResourceArn"}
_ARNS = {
    "ivschat": (re.compile(r"arn:aws:ivschat:[a-z0-9-]+:[0-9]+:(room|logging-configuration)/[a-zA-Z0-9-]+"),
                "be an ivschat room or logging-configuration ARN"),
    "ivs": (re.compile(r"arn:aws:ivs:[a-z0-9-]+:[0-9]+:[a-z-]+/[a-zA-Z0-9-]+"), "be an ivs resource ARN"),
}
#: Map shapes documented as "at most 1 KB in total" (keys plus values, UTF-8).
_ONE_KB_MAPS = {"ChatTokenAttributes", "EventAttributes"}
#: String shapes documented as "at most 1 KB" (UTF-8): PutMetadata's payload.
_ONE_KB_STRINGS = {"StreamMetadata"}


@cache
def service_model(service: str = "ivschat") -> ServiceModel:
    """botocore's model of ``service`` (``ivschat`` or ``ivs``), the source of truth for its shapes."""
    return botocore.session.get_session().get_service_model(service)


def operation(name: str, service: str = "ivschat") -> OperationModel:
    return service_model(service).operation_model(name)


def _fail(shape: Shape, path: str, value: Any, constraint: str) -> Exception:
    # Like the service, never echo a sensitive member's value (userId, token attributes).
    shown = "***" if shape.metadata.get("sensitive") else value if isinstance(value, (int, float)) else repr(value)[:100]
    message = (f"1 validation error detected: Value {shown} at '{path}' failed to satisfy constraint: "
               f"Member must {constraint}")
    return validation_error(message, field=path)


def validate(shape: Shape, value: Any, path: str = "") -> None:
    """Raise a ValidationException for the first member of ``value`` that breaks ``shape``."""
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure":
        if not isinstance(value, dict):
            raise _fail(shape, path or shape.name, value, "be a structure")
        for required in shape.required_members:
            if value.get(required) is None:
                raise _fail(shape, _join(path, required), None, "not be null")
        present = [name for name in shape.members if value.get(name) is not None]
        if meta.get("union") and len(present) != 1:
            raise _fail(shape, path or shape.name, value, "have exactly one member set")
        for name in present:
            validate(shape.members[name], value[name], _join(path, name))
    elif kind == "string":
        if not isinstance(value, str):
            raise _fail(shape, path, value, "be a string")
        if not is_unicode(value):  # a lone surrogate: JSON can spell one (\ud800), UTF-8 cannot
            raise _fail(shape, path, value, "be valid Unicode")
        _check_size(shape, path, value, len(value), meta, "length")
        if shape.enum and value not in shape.enum:
            raise _fail(shape, path, value, f"satisfy enum value set: [{', '.join(shape.enum)}]")
        pattern = meta.get("pattern")
        if pattern and shape.name not in _UNRELIABLE_PATTERNS and not _compiled(pattern).fullmatch(value):
            raise _fail(shape, path, value, f"satisfy regular expression pattern: {pattern}")
        if shape.name in _UNRELIABLE_PATTERNS and pattern:
            arn, constraint = _ARNS[pattern.split(":")[2]]  # arn:aws:SERVICE:…
            if not arn.fullmatch(value):
                raise _fail(shape, path, value, constraint)
        if shape.name in _ONE_KB_STRINGS and len(value.encode()) > MAX_METADATA_BYTES:
            raise _fail(shape, path, value, f"be at most {MAX_METADATA_BYTES} bytes (UTF-8)")
    elif kind in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            raise _fail(shape, path, value, "be an integer")
        if "min" in meta and value < meta["min"]:
            raise _fail(shape, path, value, f"have value greater than or equal to {meta['min']}")
        if "max" in meta and value > meta["max"]:
            raise _fail(shape, path, value, f"have value less than or equal to {meta['max']}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise _fail(shape, path, value, "be a boolean")
    elif kind == "list":
        if not isinstance(value, list):
            raise _fail(shape, path, value, "be a list")
        _check_size(shape, path, value, len(value), meta, "length")
        for index, item in enumerate(value):
            validate(shape.member, item, f"{path}.{index + 1}.member")
    elif kind == "map":
        if not isinstance(value, dict):
            raise _fail(shape, path, value, "be a map")
        _check_size(shape, path, value, len(value), meta, "size")
        for key, item in value.items():
            validate(shape.key, key, f"{path}.key")
            validate(shape.value, item, f"{path}.{key}")
        if shape.name in _ONE_KB_MAPS and not attributes_fit(value):
            raise validation_error(f"{path} must be at most {MAX_ATTRIBUTES_BYTES} bytes in total "
                                   f"(keys and values); got {attributes_bytes(value)}", field=path)


def member_problem(operation_name: str, member: str, value: Any, path: str) -> str | None:
    """Why ``value`` cannot be ``member`` of the operation's request, or None: the same rule and
    words as the API's, for a surface that carries the member under another name (``path``)."""
    try:
        validate(operation(operation_name).input_shape.members[member], value, path)
    except ApiError as error:
        return error.message
    return None


def modeled(shape: Shape, value: Any) -> Any:
    """A validated ``value`` as the service reads it: members the model does not name, and members
    sent as ``null``, are absent (so they are neither stored nor echoed back to a strict parser)."""
    if shape.type_name != "structure":
        return value
    return {name: modeled(shape.members[name], item) for name, item in value.items()
            if name in shape.members and item is not None}


#: Java's Unicode classes (``\p{L}``, ``\p{Lu}`` …), which the ``ivs`` tag patterns use and ``re`` lacks.
_UNICODE_CLASS = re.compile(r"\\p\{([A-Z][a-z]?)\}")


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    """A modeled pattern for ``re``: each Unicode class becomes the code point ranges it names."""
    return re.compile(_UNICODE_CLASS.sub(lambda m: _category_ranges(m[1]), pattern))


def _category_ranges(category: str) -> str:
    """Every code point whose Unicode general category starts with ``category``, as ranges for a class."""
    return "".join(re.escape(chr(low)) + (f"-{re.escape(chr(high))}" if high > low else "")
                   for name, ranges in _categories().items() if name.startswith(category) for low, high in ranges)


@cache
def _categories() -> dict[str, list[tuple[int, int]]]:
    """The code point ranges of each Unicode general category: one pass over all code points (a quarter
    of a second), once, when a pattern first needs it."""
    ranges: dict[str, list[tuple[int, int]]] = {}
    current, low = unicodedata.category("\0"), 0
    for point in range(1, sys.maxunicode + 2):
        category = unicodedata.category(chr(point)) if point <= sys.maxunicode else ""
        if category != current:
            ranges.setdefault(current, []).append((low, point - 1))
            current, low = category, point
    return ranges


def _check_size(shape: Shape, path: str, value: Any, size: int, meta: dict[str, Any], noun: str) -> None:
    if "min" in meta and size < meta["min"]:
        raise _fail(shape, path, value, f"have {noun} greater than or equal to {meta['min']}")
    if "max" in meta and size > meta["max"]:
        raise _fail(shape, path, value, f"have {noun} less than or equal to {meta['max']}")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name
