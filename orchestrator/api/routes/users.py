"""User vectors of the in-use version (direct, or aggregated from attributes or the stored profile), and
random samples of a published version's for the indexer's recall gate."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import numpy as np
from fastapi import APIRouter, Query, Request

from contract import routes
from contract.keys import Kind
from contract.profiles import Profile
from contract.types import EmbeddingType, Family
from contract.vectors import DTYPE, to_base64
from contract.versions import VERSION_ID_PATTERN
from contract.wire import ENTITY_ID, MAX_SAMPLE_USERS, AggregateRequest, UsersSample, UserVector
from orchestrator.aggregation import weighted_sum
from orchestrator.api.deps import (
    AUTH_ERRORS,
    IndexerDep,
    ReaderDep,
    TypeName,
    UserId,
    authorize,
    role_doc,
    role_line,
)
from orchestrator.api.routes.types import type_entry
from orchestrator.errors import (
    InvalidField,
    NoAttributesFound,
    NoVersionInUse,
    UnknownType,
    UnknownUser,
    UnknownVersion,
    documented,
)
from orchestrator.state import AppState
from orchestrator.store import ITEM_NAMESPACE
from service.auth import GuardedRoute, Role
from service.validation import DIGITS_ONLY

router = APIRouter(tags=["users"], route_class=GuardedRoute)


def allowed_namespaces(embedding_type: EmbeddingType) -> frozenset[str]:
    """Attribute namespaces a type can aggregate: its own, plus `item` (falls back to item vectors)."""
    return frozenset({*embedding_type.attribute_namespaces, ITEM_NAMESPACE.rstrip(":")})


def check_namespaces(embedding_type: EmbeddingType, ids: Sequence[str], field: str) -> None:
    """Refuse attributes of a namespace the type does not embed, naming the field."""
    allowed = allowed_namespaces(embedding_type)
    for position, attribute in enumerate(ids):
        namespace = attribute.split(":", 1)[0]
        if namespace not in allowed:
            raise InvalidField(
                f"{field}[{position}].id: namespace {namespace!r} is not one of type "
                f"{embedding_type.name}'s namespaces {sorted(allowed)}"
            )


def profile_attributes(profile: Profile) -> list[tuple[str, float]]:
    """A profile's items as weighted `item:<id>` attributes."""
    return [(f"{ITEM_NAMESPACE}{i.item_id}", i.weight) for i in profile.interactions]


async def _aggregate(
    state: AppState,
    embedding_type: EmbeddingType,
    version: str,
    weighted: list[tuple[str, float]],
    normalize: bool,
    who: str,
) -> UserVector:
    vectors = await state.store.attribute_vectors(
        embedding_type.name, version, [a for a, _ in weighted], embedding_type.dim
    )
    result = weighted_sum(weighted, vectors, embedding_type.dim, normalize)
    if result is None:
        shown = ", ".join(a for a, _ in weighted[:5]) + (" …" if len(weighted) > 5 else "")
        raise NoAttributesFound(
            f"{who}: none of the {len(weighted)} attributes ({shown}) has a vector in version {version} "
            f"of {embedding_type.name}"
        )
    return UserVector(
        type_name=embedding_type.name,
        version=version,
        dim=embedding_type.dim,
        vector=result.vector.tolist(),
        source="aggregate",
        used=list(result.used),
        missing=list(result.missing),
    )


async def _in_use(state: AppState, type_name: str, version: str | None) -> str:
    if version is None:
        raise NoVersionInUse(f"type_name: type {type_name} has no in_use version yet")
    state.metrics.in_use[type_name] = version
    return version


@router.get(
    routes.USER_VECTOR,
    response_model=UserVector,
    summary="A user's vector of the in-use version",
    description=f"{role_line(Role.READER)} Returns the vector together with the version it belongs to. "
    "The vector is read from the key of the in_use version just read, so the label always matches the "
    "vector even while in_use advances. Direct families read the user's own vector; a user without one "
    "(or any user of an indirect family) is aggregated (normalized) from the stored profile, whose item "
    "ids count as `item:<id>` attributes.",
    responses=documented(UnknownType, UnknownUser, NoVersionInUse, NoAttributesFound, *AUTH_ERRORS),
    openapi_extra=role_doc(Role.READER),
)
async def get_user(type_name: TypeName, user_id: UserId, request: Request) -> UserVector:
    """One user's vector and its version."""
    # The serving hot path authorizes with a direct call instead of a dependency: FastAPI's
    # dependency solving measurably costs against the <= 1.2x raw-HGET latency budget.
    state = authorize(request, Role.READER).state
    entry = await type_entry(state, type_name)
    embedding_type = entry.type
    if embedding_type.family is Family.DIRECT_DIRECT:
        version = await _in_use(state, type_name, await state.store.in_use(type_name))
        found = await state.store.vectors(type_name, version, Kind.USER, [user_id], embedding_type.dim)
        if user_id in found:
            return UserVector(
                type_name=type_name,
                version=version,
                dim=embedding_type.dim,
                vector=found[user_id].tolist(),
                source="direct",
            )
    raw_version, profile = await state.store.in_use_and_profile(type_name, user_id)
    version = await _in_use(state, type_name, raw_version)
    if profile is None:
        raise UnknownUser(f"user_id: user {user_id!r} has no vector and no profile in version {version}")
    return await _aggregate(state, embedding_type, version, profile_attributes(profile), True, "user_id")


@router.post(
    routes.AGGREGATE,
    response_model=UserVector,
    summary="Aggregate a user vector from weighted attributes",
    description=f"{role_line(Role.READER)} Weighted sum of attribute vectors of the in-use version, from "
    "explicit `attributes` (`namespace:id`, weight in (0, 1e6]) or the stored profile of `user_id`; "
    "`normalize` scales it to unit length. An `item:<id>` attribute without an attribute vector uses "
    "the version's item vector. The response lists attributes `used` and `missing`; when none is found "
    "the answer is 422 NoAttributesFound, never a zero vector.",
    responses=documented(UnknownType, UnknownUser, NoVersionInUse, NoAttributesFound, *AUTH_ERRORS),
    openapi_extra=role_doc(Role.READER),
)
async def aggregate_user(type_name: TypeName, body: AggregateRequest, ctx: ReaderDep) -> UserVector:
    """Aggregate explicit attributes or a stored profile."""
    state = ctx.state
    entry = await type_entry(state, type_name)
    if body.attributes is not None:
        weighted = [(a.id, a.weight) for a in body.attributes]
        check_namespaces(entry.type, [a for a, _ in weighted], "attributes")
        version = await _in_use(state, type_name, await state.store.in_use(type_name))
        return await _aggregate(state, entry.type, version, weighted, body.normalize, "attributes")
    assert body.user_id is not None  # the model guarantees exactly one source
    if not ENTITY_ID.fullmatch(body.user_id):
        raise InvalidField(f"user_id: {body.user_id!r} must match {ENTITY_ID.pattern}")
    raw_version, profile = await state.store.in_use_and_profile(type_name, body.user_id)
    version = await _in_use(state, type_name, raw_version)
    if profile is None:
        raise UnknownUser(f"user_id: user {body.user_id!r} has no stored profile")
    return await _aggregate(
        state, entry.type, version, profile_attributes(profile), body.normalize, "user_id"
    )


@router.get(
    routes.USERS_SAMPLE,
    response_model=UsersSample,
    summary="A random sample of one version's user vectors",
    description=f"{role_line(Role.INDEXER)} For the indexer's recall gate, which queries a new index with "
    f"the vectors serving will query it with: up to `count` (at most {MAX_SAMPLE_USERS}) user vectors of "
    "the published `version`, drawn at random; fewer when the version has fewer, none for a family whose "
    "users are aggregated. `vectors` is encoded as in items:batch.",
    responses=documented(UnknownType, UnknownVersion, *AUTH_ERRORS),
    openapi_extra=role_doc(Role.INDEXER),
)
async def users_sample(
    type_name: TypeName,
    version: Annotated[str, Query(pattern=VERSION_ID_PATTERN, description="A published version id.")],
    ctx: IndexerDep,
    count: Annotated[
        int, Query(ge=1, le=MAX_SAMPLE_USERS, description="User vectors to draw."), DIGITS_ONLY
    ] = 100,
) -> UsersSample:
    """Random user vectors of one version."""
    state = ctx.state
    entry = await type_entry(state, type_name)
    if entry.find(version) is None and not await state.store.is_published(type_name, version):
        raise UnknownVersion(f"version: {version} of {type_name} is not published")
    drawn = await state.store.sample(type_name, version, Kind.USER, count, entry.type.dim)
    matrix = np.stack(list(drawn.values())) if drawn else np.zeros((0, entry.type.dim), dtype=DTYPE)
    return UsersSample(
        type_name=type_name, version=version, dim=entry.type.dim, ids=list(drawn), vectors=to_base64(matrix)
    )
