// The explorer page: plain DOM, no framework. Every request goes to this serving process; text is
// only ever set with textContent, so nothing from the API is interpreted as HTML.
"use strict";

const $ = (id) => document.getElementById(id);

/** An error body from the API: {"error", "detail"}. */
class ApiError extends Error {
  constructor(error, detail, status) {
    super(`${error}: ${detail}`);
    this.error = error;
    this.detail = detail;
    this.status = status;
  }
}

// --- the API key ---------------------------------------------------------------------------------------
// Every data route needs a key (user data: an admin key). It comes from the URL fragment (`/#key=...`,
// which the browser never sends to a server) or the key field, and is kept for this tab only.

const KEY_STORE = "lockstep-explorer-key";

function takeKeyFromFragment() {
  const fragment = new URLSearchParams(window.location.hash.slice(1));
  const key = fragment.get("key");
  if (key) {
    sessionStorage.setItem(KEY_STORE, key);
    // Out of the address bar and the history, so it is not shared with a copied link.
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
}

function apiKey() {
  return sessionStorage.getItem(KEY_STORE) || "";
}

async function api(method, path, body) {
  const init = { method, headers: { Accept: "application/json" } };
  const key = apiKey();
  if (key) init.headers.Authorization = `Bearer ${key}`;
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    throw new ApiError("NetworkError", `${method} ${path}: ${err.message}`, 0);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    // a non-JSON body: reported below with the HTTP status
  }
  if (!response.ok) {
    throw new ApiError(
      (data && data.error) || `HTTP ${response.status}`,
      (data && data.detail) || response.statusText,
      response.status,
    );
  }
  return data;
}

function showError(err) {
  const box = $("error");
  box.replaceChildren();
  const name = document.createElement("strong");
  name.textContent = err instanceof ApiError ? err.error : "Error";
  box.append(name, ` — ${err instanceof ApiError ? err.detail : err.message}`);
  box.hidden = false;
}

function clearError() {
  $("error").hidden = true;
  $("error").replaceChildren();
}

// --- building the request ------------------------------------------------------------------------------

function list(text) {
  return text.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
}

/** "tag:fantasy 2" or "tag:fantasy=2" per line (or comma); weight 1 when absent. */
function parseAttributes(text) {
  return text
    .split(/[\n,]/)
    .map((line) => line.trim())
    .filter((line) => line.length > 0)
    .map((line) => {
      const match = line.match(/^(\S+?)(?:\s*=\s*|\s+)(\S+)$/);
      // A weight that is not a number goes to the API as null, which names the field in its error.
      return match ? { id: match[1], weight: Number(match[2]) } : { id: line, weight: 1 };
    });
}

// --- the item schema: filter inputs and columns ---------------------------------------------------------
// GET /v1/item-schema names the fields, their kinds, which are filterable and which are shown.

let itemSchema = null;

function labelOf(name) {
  const words = name.replace(/_/g, " ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

const RANGE_KINDS = new Set(["integer", "float", "date"]);

function input(id, label, attrs) {
  const wrap = document.createElement("div");
  const lab = document.createElement("label");
  lab.htmlFor = id;
  lab.textContent = label;
  const el = document.createElement(attrs.tag || "input");
  el.id = id;
  el.name = id;
  for (const [k, v] of Object.entries(attrs)) if (k !== "tag") el.setAttribute(k, v);
  wrap.append(lab, el);
  return wrap;
}

/** One input per filterable field: a list for keywords, a from/to pair for numbers and dates, yes/no. */
function renderFilterInputs(schema) {
  const box = $("filters");
  const legend = box.querySelector("legend");
  const parts = [legend];
  for (const [name, spec] of Object.entries(schema.fields)) {
    const filterable = spec.filterable ?? spec.type !== "text";
    if (!filterable) continue;
    const id = `filter-${name}`;
    if (spec.type === "keyword" || spec.type === "keywords") {
      parts.push(input(id, `${labelOf(name)}, any of (comma-separated)`, {}));
    } else if (spec.type === "boolean") {
      const wrap = input(id, labelOf(name), { tag: "select" });
      const select = wrap.querySelector("select");
      select.append(new Option("any", ""), new Option("yes", "true"), new Option("no", "false"));
      parts.push(wrap);
    } else if (RANGE_KINDS.has(spec.type)) {
      const pair = document.createElement("div");
      pair.className = "pair";
      const kind = spec.type === "date" ? { type: "date" } : { type: "number", step: spec.type === "integer" ? "1" : "any" };
      pair.append(input(`${id}-from`, `${labelOf(name)} from`, kind), input(`${id}-to`, `${labelOf(name)} to`, kind));
      parts.push(pair);
    }
  }
  box.replaceChildren(...parts);
}

function header(table, names) {
  const row = $(table).querySelector("thead tr");
  row.replaceChildren(
    ...names.map((name) => {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = name;
      return th;
    }),
  );
}

function columns() {
  return itemSchema ? itemSchema.display ?? Object.keys(itemSchema.fields) : ["title"];
}

function renderHeaders() {
  header("recs", ["#", ...columns().map(labelOf), "Score", "Scorer", "Version"]);
  header("history-table", [...columns().slice(0, 2).map(labelOf), "Weight"]);
}

async function loadSchema() {
  try {
    itemSchema = await api("GET", "/v1/item-schema");
    renderFilterInputs(itemSchema);
    renderHeaders();
  } catch (err) {
    showError(err);
  }
}

/** The contract.filters tree for the filter inputs (null when none is set). */
function buildFilters() {
  const children = [];
  for (const [name, spec] of Object.entries(itemSchema ? itemSchema.fields : {})) {
    const id = `filter-${name}`;
    if (!$(id) && !$(`${id}-from`)) continue;
    if (spec.type === "keyword" || spec.type === "keywords") {
      const values = list($(id).value);
      if (values.length) children.push({ op: "in", field: name, values });
    } else if (spec.type === "boolean") {
      const value = $(id).value;
      if (value) children.push({ op: "in", field: name, values: [value === "true"] });
    } else {
      const read = (el) => (spec.type === "date" ? el.value || null : Number.isNaN(el.valueAsNumber) ? null : el.valueAsNumber);
      const from = read($(`${id}-from`));
      const to = read($(`${id}-to`));
      if (from === null && to === null) continue;
      const range = { op: "range", field: name };
      if (from !== null) range.gte = from;
      if (to !== null) range.lte = to;
      children.push(range);
    }
  }
  if (children.length === 0) return null;
  return children.length === 1 ? children[0] : { op: "and", children };
}

function who() {
  return document.querySelector('input[name="who"]:checked').value;
}

function buildRequest() {
  const body = { k: $("k").valueAsNumber, explain: true, exclude_seen: $("exclude-seen").checked };
  if (Number.isNaN(body.k)) body.k = 10;
  if (who() === "user") body.user_id = $("user").value.trim();
  else body.attributes = parseAttributes($("attributes").value);
  const type = $("type").value;
  if (type) body.embedding_type = type;
  const filters = buildFilters();
  if (filters) body.filters = filters;
  return body;
}

// --- rendering -----------------------------------------------------------------------------------------

function cell(row, col, text, className) {
  const td = document.createElement("td");
  td.dataset.col = col;
  if (className) td.className = className;
  if (text instanceof Node) td.append(text);
  else td.textContent = text === null || text === undefined ? "—" : String(text);
  row.append(td);
  return td;
}

function span(text, className) {
  const el = document.createElement("span");
  el.className = className;
  el.textContent = text;
  return el;
}

function fixed(value, digits) {
  return typeof value === "number" ? value.toFixed(digits) : null;
}

/** A field's value as shown: lists joined, floats to 2 places, dates without seconds. */
function shown(name, value) {
  const kind = itemSchema && itemSchema.fields[name] ? itemSchema.fields[name].type : null;
  if (Array.isArray(value)) return value.join(", ");
  if (kind === "float") return fixed(value, 2);
  if (kind === "date" && typeof value === "string") return value.replace("T", " ").replace(/:00Z$/, "Z");
  return value;
}

const NUMERIC = new Set(["integer", "float"]);

function itemCells(tr, item, found) {
  columns().forEach((name, position) => {
    const kind = itemSchema && itemSchema.fields[name] ? itemSchema.fields[name].type : null;
    if (position === 0) {
      const first = document.createElement("span");
      const value = shown(name, item[name]);
      first.textContent = found ? value ?? item.item_id : `${item.item_id} (not in the index)`;
      first.title = `item ${item.item_id}`;
      cell(tr, name, first);
    } else {
      cell(tr, name, shown(name, item[name]), NUMERIC.has(kind) ? "num" : undefined);
    }
  });
}

function renderRecommendations(data) {
  const parts = [`${data.items.length} items from ${data.embedding_type}`];
  parts.push(data.version ? `version ${data.version}` : "no version (fallback only)");
  if (data.assignment) parts.push(data.assignment.source === "ab" ? "type chosen by the A/B split" : "type requested");
  if (data.cached) parts.push("cached");
  parts.push(`${data.took_ms.toFixed(1)} ms`);
  if (data.degraded) parts.push(`DEGRADED: ${data.degraded_reason}`);
  $("summary").textContent = parts.join(" · ");
  const rows = data.items.map((item, i) => {
    const tr = document.createElement("tr");
    cell(tr, "rank", i + 1, "num");
    itemCells(tr, item, true);
    cell(tr, "score", fixed(item.score, 4), "num");
    const reason = item.explain && item.explain.fallback_reason;
    const badge = span(item.scorer, `badge ${item.scorer}`);
    if (reason) badge.title = reason;
    cell(tr, "scorer", badge);
    cell(tr, "version", item.version, "version");
    return tr;
  });
  $("recs").querySelector("tbody").replaceChildren(...rows);
}

function renderHistory(data) {
  $("history-summary").textContent =
    `${data.user_id}: ${data.total} interactions` + (data.items.length < data.total ? `, newest ${data.items.length} shown` : "");
  const rows = data.items.map((item) => {
    const tr = document.createElement("tr");
    const shownColumns = columns().slice(0, 2);
    shownColumns.forEach((name, position) => {
      const value = shown(name, item[name]);
      if (position === 0) cell(tr, name, item.found ? value ?? item.item_id : `${item.item_id} (not in the index)`);
      else cell(tr, name, value);
    });
    cell(tr, "weight", fixed(item.weight, 2), "num");
    return tr;
  });
  $("history-table").querySelector("tbody").replaceChildren(...rows);
}

function clearHistory(message) {
  $("history-summary").textContent = message;
  $("history-table").querySelector("tbody").replaceChildren();
}

function renderTypes(types) {
  const count = types.length === 1 ? "1 type" : `${types.length} types`;
  $("types-summary").textContent = types.length ? count : "No embedding type is registered yet.";
  const select = $("type");
  const chosen = select.value;
  select.replaceChildren(new Option("A/B default", ""));
  const rows = [];
  const audit = [];
  for (const info of types) {
    const name = info.type.name;
    select.append(new Option(info.in_use ? name : `${name} (nothing in use)`, name));
    const tr = document.createElement("tr");
    cell(tr, "type", name, "nowrap");
    cell(tr, "family", info.type.family);
    cell(tr, "dim", `${info.type.dim} · ${info.type.similarity}`);
    cell(tr, "latest", info.latest, "version");
    const inUse = document.createElement("span");
    inUse.textContent = info.in_use ?? "none";
    if (info.in_use !== info.latest) inUse.append(" ", span("(not latest)", "behind"));
    cell(tr, "in_use", inUse, "version");
    cell(tr, "indexed", info.indexed.map((loc) => `${loc.version} (${loc.mode})`).join(", ") || "none", "version");
    cell(tr, "published", info.published.length, "num");
    rows.push(tr);
    for (const change of info.history) audit.push({ name, ...change });
  }
  if ([...select.options].some((o) => o.value === chosen)) select.value = chosen;
  $("types-table").querySelector("tbody").replaceChildren(...rows);
  audit.sort((a, b) => (a.at < b.at ? 1 : -1));
  const auditRows = audit.map((change) => {
    const tr = document.createElement("tr");
    cell(tr, "at", change.at.replace("T", " ").replace(/\.\d+/, "").replace(/(Z|\+00:00)$/, ""), "nowrap");
    cell(tr, "type", change.name, "nowrap");
    cell(tr, "from", change.from_version ?? "none", "version");
    cell(tr, "to", change.to_version, "version");
    cell(tr, "actor", `${change.actor} (${change.role})`);
    cell(tr, "reason", change.reason || "—");
    return tr;
  });
  $("audit-table").querySelector("tbody").replaceChildren(...auditRows);
}

// --- actions -------------------------------------------------------------------------------------------

async function loadTypes() {
  try {
    renderTypes(await api("GET", "/v1/embedding-types"));
  } catch (err) {
    $("types-summary").textContent = "Types unavailable.";
    showError(err);
  }
}

async function loadUsers() {
  try {
    const data = await api("GET", "/v1/users?limit=200");
    $("users").replaceChildren(...data.users.map((u) => new Option(u)));
  } catch {
    // the picker still accepts any typed id
  }
}

async function loadHistory(userId, type) {
  clearHistory("Loading…");
  const query = type ? `?embedding_type=${encodeURIComponent(type)}` : "";
  try {
    renderHistory(await api("GET", `/v1/users/${encodeURIComponent(userId)}/history${query}`));
  } catch (err) {
    clearHistory(err instanceof ApiError && err.error === "UnknownUser" ? `No profile is stored for ${userId}.` : `${err.message}`);
  }
}

async function recommend(event) {
  event.preventDefault();
  clearError();
  const body = buildRequest();
  const table = $("recs");
  table.setAttribute("aria-busy", "true");
  $("summary").textContent = "Loading…";
  try {
    const data = await api("POST", "/v1/recommend", body);
    renderRecommendations(data);
    if (body.user_id) await loadHistory(body.user_id, data.embedding_type);
    else clearHistory("Attributes query: no stored history.");
  } catch (err) {
    $("summary").textContent = "No recommendations.";
    table.querySelector("tbody").replaceChildren();
    clearHistory("");
    showError(err);
  } finally {
    table.removeAttribute("aria-busy");
  }
}

function switchWho() {
  const byUser = who() === "user";
  $("user").disabled = !byUser;
  $("attributes").disabled = byUser;
}

function useKey(event) {
  event.preventDefault();
  const field = $("api-key");
  if (field.value) sessionStorage.setItem(KEY_STORE, field.value);
  field.value = "";
  clearError();
  loadSchema();
  loadTypes();
  loadUsers();
}

document.addEventListener("DOMContentLoaded", () => {
  takeKeyFromFragment();
  $("key-form").addEventListener("submit", useKey);
  $("query-form").addEventListener("submit", recommend);
  for (const radio of document.querySelectorAll('input[name="who"]')) radio.addEventListener("change", switchWho);
  $("refresh-types").addEventListener("click", () => {
    clearError();
    loadTypes();
  });
  switchWho();
  loadSchema();
  loadTypes();
  loadUsers();
});
