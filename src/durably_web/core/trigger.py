"""Validate a trigger request into a `NewRun`: input, labels, keys, coalesce, start time.

Everything is checked before anything is written; a batch is validated whole first. Errors
name the field and, in a batch, the index of the item.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from durably_web.core.waits import seconds_of, time_of
from durably_web.errors import ValidationError
from durably_web.events import EventBus, RunCoalesced, RunTrigger
from durably_web.job import JobDefinition
from durably_web.json_value import check_text, check_value, shown
from durably_web.models import Run
from durably_web.storage.records import NewRun
from durably_web.validation import dump_json, format_pydantic_error, to_json_value

if TYPE_CHECKING:
    import pydantic

__all__ = [
    "TriggerItem",
    "announce",
    "prepare",
    "scoped_key",
    "validate_label_filter",
    "validate_labels",
]

_LABEL_KEY = re.compile(r"[a-zA-Z0-9\-_./]+")  # fullmatch: `$` would allow a final "\n"
_MAX_KEY = 255


@dataclass(frozen=True, slots=True)
class TriggerItem:
    """One item of ``batch_trigger`` with its own options (plain inputs need none).

    ``key_scope`` namespaces both keys (see :func:`scoped_key`): the HTTP server sets it to
    the caller's tenant so that tenants never share an idempotency or concurrency key.
    ``delay`` (seconds or a ``timedelta``) or ``run_at`` (an aware datetime, or ISO-8601 text
    with an offset) delays the run's start: it is ``pending`` and unclaimed until then.
    """

    input: Any
    idempotency_key: str | None = None
    concurrency_key: str | None = None
    labels: Mapping[str, str] | None = None
    coalesce: Literal["skip"] | None = None
    key_scope: str | None = None
    delay: float | timedelta | None = None
    run_at: datetime | str | None = None


def scoped_key(scope: str | None, key: str | None) -> str | None:
    """Return ``key`` as stored for callers of key scope ``scope``.

    Without a scope the key is stored as given (upstream's behaviour). With one, it is
    stored as ``<24 hex digits of SHA-256(scope)>:<key>``: callers of two different scopes
    never share a key, whatever keys they choose, and no stored key reveals the scope.
    """
    if scope is None or key is None:
        return key
    digest = hashlib.sha256(scope.encode("utf-8", "surrogatepass")).hexdigest()[:24]
    return f"{digest}:{key}"


def validate_labels(
    labels: Any, adapter: pydantic.TypeAdapter[Any] | None, where: str = ""
) -> dict[str, str]:
    """Validate labels (with the instance's labels model, if any) into a ``str → str`` dict.

    Raises:
        ValidationError: a key is not ``[A-Za-z0-9-_./]+`` (1-255 characters), a value is
            not a string of valid Unicode, or the labels model rejects them.

    """
    if labels is None:
        return {}
    if adapter is not None:
        import pydantic  # imported by the adapter: a browser engine starts without it

        check_value(labels, f"labels{where}", strict=False)
        try:
            labels = to_json_value(adapter, adapter.validate_python(labels), f"labels{where}")
        except pydantic.ValidationError as exc:
            raise ValidationError(f"invalid labels{where}: {format_pydantic_error(exc)}") from None
    if not isinstance(labels, Mapping):
        raise ValidationError(f"labels{where} must be a mapping of strings, got {shown(labels)}")
    out: dict[str, str] = {}
    for key, value in labels.items():
        if value is None and adapter is not None:
            continue
        if not isinstance(key, str) or not _LABEL_KEY.fullmatch(key) or len(key) > _MAX_KEY:
            raise ValidationError(
                f"invalid label key {shown(key)}{where}: must be 1-{_MAX_KEY} alphanumeric "
                "characters, dashes, underscores, dots, and slashes"
            )
        if not isinstance(value, str):
            raise ValidationError(f"label {key!r}{where} must be a string, got {shown(value)}")
        out[key] = check_text(value, f"label {key!r}{where}")
    return out


def validate_label_filter(labels: Any) -> tuple[tuple[str, str], ...]:
    """Validate a ``get_runs`` label filter into sorted ``(key, value)`` pairs."""
    return tuple(sorted(validate_labels(labels, None, " in filter").items()))


def _key(value: Any, name: str, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > _MAX_KEY:
        raise ValidationError(
            f"{name}{where} must be a non-empty string of at most {_MAX_KEY} characters, "
            f"got {shown(value)}"
        )
    return check_text(value, f"{name}{where}")


def start_time(item: TriggerItem, now: float, where: str = "") -> float | None:
    """Return when a trigger's run may start (epoch seconds), or None for at once.

    Raises:
        ValidationError: both ``delay`` and ``run_at``, a delay that is not 0 to 100 years,
            or a ``run_at`` that is not an aware datetime (ISO text with an offset).

    """
    if item.delay is not None and item.run_at is not None:
        raise ValidationError(f"give delay or run_at{where}, not both")
    if item.delay is not None:
        return now + seconds_of(item.delay, f"delay{where}")
    if item.run_at is not None:
        return time_of(item.run_at, f"run_at{where}")
    return None


def prepare(
    job: JobDefinition[Any, Any],
    item: TriggerItem,
    labels_adapter: pydantic.TypeAdapter[Any] | None,
    where: str = "",
    *,
    now: float,
) -> tuple[NewRun, Any]:
    """Validate one trigger; return the run to enqueue and the input as JSON data.

    Args:
        job: the job being triggered.
        item: input and options.
        labels_adapter: the instance's labels model, if any.
        where: a suffix naming the batch item (``" at index 3"``) for error messages.
        now: the engine's time (a ``delay`` counts from it).

    """
    if item.coalesce is not None and item.coalesce != "skip":
        raise ValidationError(
            f"Invalid coalesce value{where}: {shown(item.coalesce)}. Valid values: 'skip'"
        )
    concurrency_key = _key(item.concurrency_key, "concurrency_key", where)
    if item.coalesce == "skip" and concurrency_key is None:
        raise ValidationError(f"coalesce requires concurrency_key{where}")
    if item.key_scope is not None and not isinstance(item.key_scope, str):
        raise ValidationError(f"key_scope{where} must be a string, got {item.key_scope!r}")
    idempotency_key = _key(item.idempotency_key, "idempotency_key", where)
    run_at = start_time(item, now, where)
    what = f"input for job {job.name!r}{where}"
    check_value(item.input, what, strict=False)  # before pydantic: no depth bomb reaches it
    import pydantic  # imported by the adapter: a browser engine starts without it

    try:
        value = job.input_adapter.validate_python(item.input)
    except pydantic.ValidationError as exc:
        raise ValidationError(
            f"Invalid input for job {job.name!r}{where}: {format_pydantic_error(exc)}"
        ) from None
    data = to_json_value(job.input_adapter, value, what)
    labels = validate_labels(item.labels, labels_adapter, where)
    new_run = NewRun(
        job_name=job.name,
        input_json=dump_json(data, what),
        idempotency_key=scoped_key(item.key_scope, idempotency_key),
        concurrency_key=scoped_key(item.key_scope, concurrency_key),
        labels=labels,
        coalesce=item.coalesce == "skip",
        run_at=run_at,
    )
    return new_run, data


def announce(bus: EventBus, runs: Sequence[Run], prepared: Sequence[tuple[NewRun, Any]]) -> None:
    """Emit ``run:trigger`` for each created run, ``run:coalesced`` for each coalesced one.

    Args:
        bus: the engine's events.
        runs: what the store returned for the triggers, in order.
        prepared: the triggers as :func:`prepare` returned them, in the same order.

    """
    for run, (new, data) in zip(runs, prepared, strict=True):
        if run.disposition == "created":
            bus.emit(
                RunTrigger, run_id=run.id, job_name=run.job_name, labels=run.labels, input=data
            )
        elif run.disposition == "coalesced":
            bus.emit(
                RunCoalesced,
                run_id=run.id,
                job_name=run.job_name,
                labels=run.labels,
                skipped_input=data,
                skipped_labels=new.labels,
            )
