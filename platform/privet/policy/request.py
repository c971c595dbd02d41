"""Build Cedar requests from plain Python values, so the gateway makes one call per request.

Conventions (documented in policies/README.md):
- the principal is a ``User`` or ``ServiceAccount`` entity with ``id`` (its principal id)
  and ``ref = "<Type>:<id>"``;
- ``context.roles`` are the principal's roles in ``project_id`` (plus platform-wide ones),
  ``context.grants`` its explicit grants there, ``context.project`` that project;
- a project-scoped resource carries its own stored ``project``; when the caller does not
  give one it defaults to ``project_id``.
Python floats and ``Decimal`` become Cedar decimals (at most four places); sets, lists
and tuples become Cedar sets; ``EntityRef`` becomes an entity reference.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

from privet.policy.actions import ENTITY_TYPES_WITH_OPTIONAL_PROJECT, ENTITY_TYPES_WITH_PROJECT
from privet.policy.errors import PolicyRequestError
from privet.policy.schemas import AuthzRequest, Entity, EntityRef

_FOUR_PLACES = Decimal("0.0001")


def principal_ref(principal_type: str, principal_id: str) -> str:
    """The string services store as ``submitted_by`` and policies compare with ``principal.ref``."""
    return f"{principal_type}:{principal_id}"


def decimal_up(value: float | int | str | Decimal) -> Decimal:
    """Round a requested amount (e.g. a job's ε) up to Cedar's four places: never under-report."""
    return _to_decimal(value).quantize(_FOUR_PLACES, rounding=ROUND_CEILING)


def decimal_down(value: float | int | str | Decimal) -> Decimal:
    """Round a limit (e.g. a dataset's ε budget) down to four places: never over-allow."""
    return _to_decimal(value).quantize(_FOUR_PLACES, rounding=ROUND_FLOOR)


def _to_decimal(value: float | int | str | Decimal) -> Decimal:
    try:
        if isinstance(value, Decimal):
            result = value
        else:
            result = Decimal(repr(value) if isinstance(value, float) else str(value))
    except InvalidOperation as exc:
        raise PolicyRequestError(f"not a decimal: {value!r}") from exc
    if not result.is_finite():
        raise PolicyRequestError(f"not a finite decimal: {value!r}")
    return result


def _cedar_decimal(value: float | Decimal) -> dict[str, Any]:
    number = _to_decimal(value)
    exponent = number.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -4:
        raise PolicyRequestError(
            f"{value!r} has more than four decimal places; round it with decimal_up/decimal_down"
        )
    text = format(number, "f")
    if "." not in text:
        text += ".0"
    return {"__extn": {"fn": "decimal", "arg": text}}


def to_cedar_value(value: object) -> Any:
    """Convert a plain Python value to Cedar's JSON value form."""
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal):
        return _cedar_decimal(value)
    if isinstance(value, EntityRef):
        return {"__entity": value.to_cedar()}
    if isinstance(value, Mapping):
        if len(value) == 1 and ("__entity" in value or "__extn" in value):
            return dict(value)  # already in Cedar's JSON form
        return {str(k): to_cedar_value(v) for k, v in value.items()}
    if isinstance(value, set | frozenset):
        return [to_cedar_value(v) for v in sorted(value, key=str)]
    if isinstance(value, list | tuple):
        return [to_cedar_value(v) for v in value]
    raise PolicyRequestError(f"cannot pass {type(value).__name__} to Cedar: {value!r}")


def entity_to_cedar(entity: Entity) -> dict[str, Any]:
    """An entity in Cedar's JSON entity form."""
    return {
        "uid": entity.uid.to_cedar(),
        "attrs": {k: to_cedar_value(v) for k, v in entity.attrs.items()},
        "parents": [p.to_cedar() for p in entity.parents],
    }


def make_request(
    *,
    principal: EntityRef,
    action: str,
    resource: EntityRef,
    context: Mapping[str, Any],
    entities: Iterable[Entity] = (),
) -> AuthzRequest:
    """Assemble an ``AuthzRequest`` from explicit entities (the low-level form)."""
    cedar_request = {
        "principal": principal.to_cedar(),
        "action": {"type": "Action", "id": str(action)},
        "resource": resource.to_cedar(),
        "context": {k: to_cedar_value(v) for k, v in context.items()},
    }
    cedar_entities = json.dumps([entity_to_cedar(e) for e in entities])
    return AuthzRequest(
        principal=principal,
        action=str(action),
        resource=resource,
        cedar_request=cedar_request,
        cedar_entities=cedar_entities,
    )


def build_request(
    *,
    principal_type: str,
    principal_id: str,
    action: str,
    resource_type: str,
    resource_id: str,
    resource_attributes: Mapping[str, Any] | None = None,
    project_id: str | None = None,
    roles: Iterable[str] = (),
    grants: Iterable[str] = (),
    context: Mapping[str, Any] | None = None,
    principal_accountable: str | None = None,
) -> AuthzRequest:
    """Build the whole Cedar request for one route call from plain values.

    ``roles``/``grants`` must be those the principal holds in ``project_id`` (plus
    platform-wide ones); for platform-level resources pass ``project_id=None`` and the
    platform-wide roles only. ``resource_attributes['project']`` should be the object's
    stored project id (a string or ``EntityRef``), so a mismatch with ``project_id`` is
    denied by ``tenancy.project-mismatch``. ``context`` holds the action's extra facts
    (see ``training_context``, ``upload_context``, ``predict_context``).
    ``principal_accountable`` is the principal's accountable human (``principal.accountable``,
    which two-person rules compare); a ``User`` defaults to itself, a ``ServiceAccount``
    without one has no ``accountable`` attribute (and those rules deny).
    """
    principal = EntityRef(principal_type, principal_id)
    resource = EntityRef(resource_type, resource_id)
    attrs: dict[str, Any] = dict(resource_attributes or {})
    project = attrs.get("project")
    if isinstance(project, str):
        attrs["project"] = EntityRef("Project", project)
    elif (
        project is None
        and project_id is not None
        and (
            resource_type in ENTITY_TYPES_WITH_PROJECT
            or resource_type in ENTITY_TYPES_WITH_OPTIONAL_PROJECT
        )
    ):
        attrs["project"] = EntityRef("Project", project_id)
    full_context: dict[str, Any] = dict(context or {})
    full_context["roles"] = frozenset(roles)
    full_context["grants"] = frozenset(grants)
    if project_id is not None:
        full_context["project"] = EntityRef("Project", project_id)
    principal_attrs: dict[str, Any] = {
        "id": principal_id,
        "ref": principal_ref(principal_type, principal_id),
    }
    if principal_accountable is None and principal_type == "User":
        principal_accountable = principal_id
    if principal_accountable is not None:
        principal_attrs["accountable"] = principal_accountable
    entities = [Entity(principal, principal_attrs)]
    if resource != principal:
        entities.append(Entity(resource, attrs))
    return make_request(
        principal=principal,
        action=action,
        resource=resource,
        context=full_context,
        entities=entities,
    )


def training_context(
    *,
    purpose: str,
    dataset_contains_personal_data: bool,
    dataset_categories: Iterable[str],
    dataset_purposes: Iterable[str],
    dataset_epsilon_limit: float | Decimal,
    dp: bool,
    epsilon: float | Decimal | None,
    base_model: str,
    base_model_allowlisted: bool,
) -> dict[str, Any]:
    """Context for ``training_job.submit``: the job's request and the dataset's declarations.

    ε is rounded up and the dataset's limit down, so rounding never lets a job through.
    ``epsilon`` is None for a non-private job (allowed only on non-personal data).
    """
    ctx: dict[str, Any] = {
        "purpose": purpose,
        "dataset": {
            "contains_personal_data": dataset_contains_personal_data,
            "categories": frozenset(dataset_categories),
            "purposes": frozenset(dataset_purposes),
            "epsilon_limit": decimal_down(dataset_epsilon_limit),
        },
        "dp": dp,
        "base_model": base_model,
        "base_model_allowlisted": base_model_allowlisted,
    }
    if epsilon is not None:
        ctx["epsilon"] = decimal_up(epsilon)
    return ctx


def upload_context(*, contains_personal_data: bool, pii_suspected: bool) -> dict[str, Any]:
    """Context for ``dataset.upload`` / ``dataset.new_version``: declaration vs PII scan."""
    return {"contains_personal_data": contains_personal_data, "pii_suspected": pii_suspected}


def predict_context(*, purpose: str) -> dict[str, Any]:
    """Context for ``model_version.predict``: the caller's stated purpose (one per decision)."""
    return {"purpose": purpose}
