"""The item index template and the per-type vector-slot mappings (lucene engine only)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from contract.indexing import Mode, Slot, vector_field, version_field
from contract.items import FieldKind, ItemSchema, schema
from contract.settings import IndexerSettings
from contract.types import EmbeddingType, Encoder, IndexParams, Similarity
from search.errors import TemplateMismatch, UnsupportedEngine

if TYPE_CHECKING:  # search.port imports search.requests, which reads SPACE_TYPES from here
    from search.port import SearchEngine

TEMPLATE_PATH: Final = Path(__file__).resolve().parent.parent / "index_templates" / "items.json"
ENGINE: Final = "lucene"

SPACE_TYPES: Final[dict[Similarity, str]] = {
    Similarity.DOT: "innerproduct",
    Similarity.COSINE: "cosinesimil",
    Similarity.L2: "l2",
}

# Lucene's scalar quantizer: bits per dimension of each quantized encoder (required on indices of 3.6+).
SQ_BITS: Final[dict[Encoder, int]] = {Encoder.SQ7: 7, Encoder.SQ1: 1}

# The mapping type each metadata kind must have (keyword arrays are plain keyword fields in OpenSearch).
MAPPING_TYPES: Final[dict[FieldKind, str]] = {
    FieldKind.KEYWORD: "keyword",
    FieldKind.KEYWORDS: "keyword",
    FieldKind.INTEGER: "integer",
    FieldKind.FLOAT: "double",
    FieldKind.BOOLEAN: "boolean",
    FieldKind.DATE: "date",
    FieldKind.TEXT: "text",
}
DATE_FORMAT: Final = "strict_date_optional_time"  # what contract.items.parse_date writes, UTC with a Z


@dataclass(frozen=True)
class IndexLayout:
    """How many primary shards an index has, and how many replicas of each."""

    shards: int
    replicas: int

    def settings(self) -> dict[str, int]:
        """As index settings."""
        return {"number_of_shards": self.shards, "number_of_replicas": self.replicas}


def layout_of(settings: IndexerSettings, mode: Mode) -> IndexLayout:
    """The layout the settings give an index of this kind (shadow-built, or the live one)."""
    if mode is Mode.SHADOW:
        return IndexLayout(settings.shadow_shards, settings.shadow_replicas)
    return IndexLayout(settings.live_shards, settings.live_replicas)


def template_name(index_prefix: str) -> str:
    """Name of the items index template."""
    return f"{index_prefix}-items"


def template_pattern(index_prefix: str) -> str:
    """Index pattern the items template applies to."""
    return f"{index_prefix}-items-*"


def load_template_file(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The template as stored in index_templates/ (without its `_comment`)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise TemplateMismatch(f"cannot read the index template {path}: {exc}") from exc
    if not isinstance(data, dict):
        raise TemplateMismatch(f"{path} must hold a JSON object")
    data.pop("_comment", None)
    return data


def metadata_mapping(item_schema: ItemSchema) -> dict[str, Any]:
    """The mapping properties of the schema's fields (filters only reach the filterable ones' index)."""
    properties: dict[str, Any] = {}
    for name, kind in item_schema.kinds().items():
        spec = item_schema.fields.get(name)
        field: dict[str, Any] = {"type": MAPPING_TYPES[kind]}
        if kind is FieldKind.DATE:
            field["format"] = DATE_FORMAT
        if spec is not None and not spec.can_filter and kind is not FieldKind.TEXT:
            field["index"] = False  # kept in _source and doc values (the popularity prior reads those)
        properties[name] = field
    return properties


def metadata_problems(properties: Mapping[str, Any]) -> list[str]:
    """Where a mapping's metadata properties disagree with the item schema in effect (empty: none)."""
    problems = []
    for name, kind in schema().kinds().items():
        got = properties.get(name, {}).get("type")
        if got != MAPPING_TYPES[kind]:
            problems.append(
                f"field {name!r} ({kind.value}) must be mapped as {MAPPING_TYPES[kind]!r}, got {got!r}"
            )
    return problems


def items_template(settings: IndexerSettings, path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """The composable index template body for this prefix, checked against the contract."""
    body = copy.deepcopy(load_template_file(path))
    template = body.setdefault("template", {})
    mappings = template.setdefault("mappings", {})
    if "properties" in mappings:
        raise TemplateMismatch(
            f"{path}: mappings.properties must not be given: they come from the item schema"
        )
    item_schema = schema()
    mappings["properties"] = metadata_mapping(item_schema)
    mappings["_meta"] = {"item_schema": item_schema.name, "schema_fingerprint": item_schema.fingerprint()}
    index_settings = template.setdefault("settings", {}).setdefault("index", {})
    if index_settings.get("knn") is not True:
        raise TemplateMismatch(f"{path}: settings.index.knn must be true")
    fixed = sorted({"number_of_shards", "number_of_replicas"} & set(index_settings))
    if fixed:
        raise TemplateMismatch(f"{path}: settings.index must not fix {fixed}: they come from the settings")
    index_settings["knn.algo_param.ef_search"] = settings.hnsw_ef_search
    # Indices we create name their own layout; this covers one made under the pattern by hand.
    index_settings.update(layout_of(settings, Mode.INCREMENTAL).settings())
    body["index_patterns"] = [template_pattern(settings.index_prefix)]
    return body


def require_lucene(engine: str) -> str:
    """The engine, if it is lucene; anything else is refused (faiss/nmslib have no native libraries here)."""
    if engine != ENGINE:
        raise UnsupportedEngine(
            f"k-NN engine {engine!r} is refused: the Maven k-NN build ships no native faiss/nmslib "
            "libraries and the first write to such an index kills the node; use 'lucene'"
        )
    return engine


def effective(params: IndexParams, settings: IndexerSettings) -> dict[str, int | float | str]:
    """A type's graph parameters with the settings filled in where it names none: what a build uses (the
    confidence interval only when the type names one: else lucene's own)."""
    chosen: dict[str, int | float | str] = {
        "m": params.m or settings.hnsw_m,
        "ef_construction": params.ef_construction or settings.hnsw_ef_construction,
        "encoder": params.encoder.value,
    }
    if params.confidence_interval is not None:
        chosen["confidence_interval"] = params.confidence_interval
    return chosen


def knn_vector_mapping(
    dim: int,
    similarity: Similarity,
    settings: IndexerSettings,
    engine: str = ENGINE,
    params: IndexParams | None = None,
) -> dict[str, Any]:
    """A knn_vector field: HNSW on lucene, space type from the model similarity, the type's own parameters.

    A parameter the type leaves out takes the setting (hnsw_m, hnsw_ef_construction).
    """
    params = params or IndexParams()
    chosen = effective(params, settings)
    parameters: dict[str, Any] = {"m": chosen["m"], "ef_construction": chosen["ef_construction"]}
    bits = SQ_BITS.get(params.encoder)
    if bits is not None:
        # No confidence interval named: none sent, so fields mapped before it existed still match.
        interval = (
            {} if params.confidence_interval is None else {"confidence_interval": params.confidence_interval}
        )
        parameters["encoder"] = {"name": "sq", "parameters": {"bits": bits, **interval}}
    return {
        "type": "knn_vector",
        "dimension": dim,
        "method": {
            "name": "hnsw",
            "engine": require_lucene(engine),
            "space_type": SPACE_TYPES[similarity],
            "parameters": parameters,
        },
    }


def vector_slot_mappings(
    etype: EmbeddingType, settings: IndexerSettings, slots: Iterable[Slot] = tuple(Slot), engine: str = ENGINE
) -> dict[str, Any]:
    """Mapping properties of a type's vector slots: a knn_vector and a keyword version field per slot."""
    properties: dict[str, Any] = {}
    for slot in slots:
        properties[vector_field(etype.name, slot)] = knn_vector_mapping(
            etype.dim, etype.similarity, settings, engine, etype.index
        )
        properties[version_field(etype.name, slot)] = {"type": "keyword"}
    return properties


def flatten_settings(settings: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested settings as dotted keys ('index.knn.algo_param.ef_search'), however the server nested them."""
    flat: dict[str, Any] = {}
    for key, value in settings.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_settings(value, f"{name}."))
        else:
            flat[name] = value
    return flat


async def install_items_template(search: SearchEngine, settings: IndexerSettings) -> dict[str, Any]:
    """Install (or replace) the items template for this prefix; returns the body installed."""
    body = items_template(settings)
    await search.put_index_template(template_name(settings.index_prefix), body)
    return body


async def template_problems(search: SearchEngine, settings: IndexerSettings) -> list[str]:
    """How the installed items template differs from what we would install (empty: it matches)."""
    name = template_name(settings.index_prefix)
    installed = await search.index_template(name)
    if installed is None:
        return [f"index template {name!r} is not installed"]
    wanted = items_template(settings)
    problems = []
    if installed.get("index_patterns") != wanted["index_patterns"]:
        problems.append(
            f"index_patterns are {installed.get('index_patterns')}, want {wanted['index_patterns']}"
        )
    mappings = installed.get("template", {}).get("mappings", {})
    problems.extend(metadata_problems(mappings.get("properties", {})))
    if mappings.get("dynamic") != wanted["template"]["mappings"].get("dynamic"):
        problems.append(f"mappings.dynamic is {mappings.get('dynamic')!r}")
    flat = flatten_settings(installed.get("template", {}).get("settings", {}))
    if str(flat.get("index.knn")).lower() != "true":
        problems.append("settings index.knn is not true")
    if str(flat.get("index.knn.algo_param.ef_search")) != str(settings.hnsw_ef_search):
        problems.append(
            f"index.knn.algo_param.ef_search is {flat.get('index.knn.algo_param.ef_search')}, "
            f"want {settings.hnsw_ef_search}"
        )
    for name, value in layout_of(settings, Mode.INCREMENTAL).settings().items():
        if str(flat.get(f"index.{name}")) != str(value):
            problems.append(f"index.{name} is {flat.get(f'index.{name}')}, want {value}")
    return problems
