// SP-E dashboard: fetches /api/dashboard and /api/incidents, renders the KPI
// tiles, the mode banner, the breaker state, the charts (SVG drawn by the
// server at /api/charts/{name}.svg) and the incident timeline; follows the
// server's events (/api/events, Server-Sent Events; events.js) to update
// without reloading, polling every 30 s when they are unavailable.
"use strict";

import { followEvents } from "./events.js";
import { applyStatic, detectLang, locale, storeLang, t } from "./i18n.js";

const POLL_MS = 30000;
const AGE_TICK_MS = 5000;
// A fetch the server has not answered in this long has failed: a frozen
// server or a dead network path must not leave the page looking current.
const FETCH_TIMEOUT_MS = 10000;
const INCIDENT_LIMIT = 20;
const SOURCES = ["solar", "wind", "other", "imports"];
// Tiles in order: [key in kpis, label key].
const KPI_TILES = [
  "demand_mw", "supply_mw", "balance_mw", "coverage_ratio", "renewable_share",
  "peak_demand_mw", "data_freshness_s", "forecast_error", "self_sufficiency",
];
const BREAKER_LEVEL = {
  closed: "ok", open: "critical", half_open: "warning", forced_open: "critical", disabled: "warning",
};

const state = {
  lang: detectLang(),
  data: null,
  incidents: null,
  incidentsFetchedAt: 0,
  incidentsFailed: false,
  journalAvailable: true,
  fetchedAt: 0,
  failed: false,
  failedAt: 0,
  retryMs: 0,
  updatedAt: null,
  chartVersion: null,
  chartLang: null,
  poll: null,
  live: "connecting",
  // The hour (ms / 3.6e6) a new-hour refresh was last tried for.
  hourTried: null,
  // Whether the last fetch of the dashboard failed (its KPIs' verdicts may
  // be old).
  dashboardFailed: false,
  // Why the last fetch failed: [i18n key, vars] for the offline notice.
  offline: ["offline", null],
};

function $(id) { return document.getElementById(id); }

function known(v) { return v !== null && v !== undefined && Number.isFinite(v); }

// Seconds since the dashboard was fetched (ages and waits move on between fetches).
function elapsed() { return state.fetchedAt ? (Date.now() - state.fetchedAt) / 1000 : 0; }

function number(v, digits) {
  return new Intl.NumberFormat(locale(state.lang), {
    minimumFractionDigits: digits || 0, maximumFractionDigits: digits || 0,
  }).format(v);
}

function duration(s) {
  if (!known(s)) return "—";
  s = Math.max(0, Math.round(s));
  if (s < 120) return s + " s";
  if (s < 7200) return Math.round(s / 60) + " min";
  if (s < 172800) return number(s / 3600, 1) + " h";
  return number(s / 86400, 1) + (state.lang === "fr" ? " j" : " d");
}

// A time in the site's time zone (the charts' axis), falling back to the browser's.
function when(iso, withDate) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return "—";
  const options = withDate === false
    ? { hour: "2-digit", minute: "2-digit" }
    : { dateStyle: "short", timeStyle: "short" };
  const tz = state.data && state.data.site && state.data.site.timezone;
  try {
    return new Intl.DateTimeFormat(locale(state.lang), tz ? { ...options, timeZone: tz } : options).format(date);
  } catch (e) {
    return new Intl.DateTimeFormat(locale(state.lang), options).format(date);
  }
}

// A clock time with seconds in the site's time zone (as every other time).
function clockTime(date) {
  const options = { hour: "2-digit", minute: "2-digit", second: "2-digit" };
  const tz = state.data && state.data.site && state.data.site.timezone;
  try {
    return new Intl.DateTimeFormat(locale(state.lang), tz ? { ...options, timeZone: tz } : options).format(date);
  } catch (e) {
    return new Intl.DateTimeFormat(locale(state.lang), options).format(date);
  }
}

function formatKpi(kpi) {
  if (!kpi || !known(kpi.value)) return "—";
  const v = kpi.value;
  switch (kpi.unit) {
    case "ratio": return number(v * 100, 1) + " %";
    case "%": return number(v, 1) + " %";
    case "s": return duration(v);
    case "MW": return number(v) + " MW";
    default: return number(v, 2) + (kpi.unit ? " " + kpi.unit : "");
  }
}

// A tile's status: "na" without a value (nothing to judge, not "ok"),
// "stale" while the server cannot be reached (its verdict may be old),
// else the server's.
function statusOf(kpi) {
  if (!kpi || !known(kpi.value)) return "na";
  if (state.dashboardFailed) return "stale";
  return ["ok", "warning", "critical"].includes(kpi.status) ? kpi.status : "warning";
}

// The label of an identifier the server sends (an incident's kind or
// component): its translation, else the identifier itself.
function label(prefix, id) {
  const key = prefix + id;
  const text = t(state.lang, key);
  return text === key ? String(id) : text;
}

// Set a node's text only when it changes: live regions (the banner, the
// incident notice) are announced again by screen readers at each write.
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

// The forecast error KPI, under whatever name the server gives it.
function forecastErrorKpi(kpis) {
  const name = Object.keys(kpis).find(k => k.startsWith("forecast_error"));
  return name ? kpis[name] : null;
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function tile(name, labelKey, kpi, swatch) {
  const status = statusOf(kpi);
  const article = el("article", "tile " + status);
  article.dataset.kpi = name;
  const label = el("h3", "label");
  if (swatch) label.append(el("span", "swatch " + swatch));
  label.append(t(state.lang, labelKey));
  const value = el("p", "value", formatKpi(kpi));
  const statusLine = el("p", "status", t(state.lang, "status_" + status));
  article.append(label, value, statusLine);
  if (!kpi || (name === "forecast_error" && !known(kpi.value))) {
    article.append(el("p", "sub", t(state.lang, "kpi_not_available")));
  } else if (name === "peak_demand_mw" && kpi.at) {
    article.append(el("p", "sub", t(state.lang, "kpi_at", { time: when(kpi.at, false) })));
  }
  return article;
}

function renderTiles(kpis) {
  const tiles = KPI_TILES.map(name => {
    let kpi = name === "forecast_error" ? forecastErrorKpi(kpis) : kpis[name];
    // The data's age grows between fetches, as the "data age" fact does.
    if (name === "data_freshness_s" && kpi && known(kpi.value)) kpi = { ...kpi, value: kpi.value + elapsed() };
    return tile(name, "kpi_" + name, kpi || null);
  });
  const bySource = kpis.supply_by_source || {};
  for (const source of SOURCES) {
    tiles.push(tile(source + "_mw", "kpi_" + source, bySource[source] || null, source));
  }
  $("tiles").replaceChildren(...tiles);
  $("tiles").setAttribute("aria-busy", "false");
}

function renderBreaker(b) {
  const pill = $("breaker");
  if (!b) { pill.textContent = "—"; pill.className = "pill"; return; }
  const parts = [t(state.lang, "breaker_" + b.state)];
  if (known(b.retry_after_s)) {
    parts.push(t(state.lang, "breaker_retry", { time: duration(Math.max(0, b.retry_after_s - elapsed())) }));
  }
  if (b.window_calls) {
    parts.push(t(state.lang, b.window_calls === 1 ? "breaker_failures_one" : "breaker_failures",
      { rate: number(b.failure_rate * 100) + " %", calls: b.window_calls }));
  }
  pill.textContent = parts.join(" · ");
  // Closed but with failed calls in its window: the upstream is failing,
  // not yet often enough to open the breaker. Not "normal" green.
  const failing = b.state === "closed" && b.failure_rate > 0;
  pill.className = "pill " + (failing ? "warning" : BREAKER_LEVEL[b.state] || "warning");
  pill.dataset.state = b.state;
}

function renderPredictions(f) {
  if (!f) { $("predictions").textContent = t(state.lang, "predictions_none"); return; }
  let text = t(state.lang, "predictions_made", {
    model: f.model, tier: t(state.lang, "tier_" + f.tier),
    age: duration(known(f.age_s) ? f.age_s + elapsed() : f.age_s),
  });
  // Predictions made from estimated history say so (provenance of the inputs).
  if (f.inputs && f.inputs !== "live") {
    text += " · " + t(state.lang, "predictions_inputs", { provenance: t(state.lang, "prov_" + f.inputs) });
  }
  $("predictions").textContent = text;
  $("predictions").dataset.inputs = f.inputs || "";
}

function renderAge() {
  const data = state.data;
  if (!data || !data.weather) return;
  $("age").textContent = duration(data.weather.age_s + elapsed());
}

function chartAlt(name, data) {
  const k = data.kpis || {};
  const site = (data.site && data.site.name) || "";
  const now = Date.now();
  const nearest = series => {
    const times = (series && series.time) || [];
    let best = -1;
    times.forEach((iso, i) => { if (Date.parse(iso) <= now) best = i; });
    return best;
  };
  switch (name) {
    case "weather": {
      const w = data.weather || {};
      const i = nearest(w);
      const temp = i >= 0 && known(w.temperature_2m[i]) ? number(w.temperature_2m[i], 1) + " °C" : "—";
      const wind = i >= 0 && known(w.wind_speed_10m[i]) ? number(w.wind_speed_10m[i], 1) + " m/s" : "—";
      return t(state.lang, "alt_weather", { site, temp, wind });
    }
    case "demand":
      return t(state.lang, "alt_demand", {
        site, demand: formatKpi(k.demand_mw), peak: formatKpi(k.peak_demand_mw),
        forecast: t(state.lang, data.forecast ? "alt_forecast_yes" : "alt_forecast_no"),
      });
    case "supply":
      return t(state.lang, "alt_supply", { site, supply: formatKpi(k.supply_mw), share: formatKpi(k.renewable_share) });
    case "history":
      return t(state.lang, "alt_history", { site });
    default:
      return t(state.lang, "alt_balance", { site, balance: formatKpi(k.balance_mw) });
  }
}

// What the charts are drawn from: the snapshot, and the forecast (which can
// change without a new snapshot).
function chartVersion(data) {
  const f = data.forecast;
  const forecast = f ? [f.model, f.tier, (f.time || [])[0], (f.mean || []).slice(0, 4).join(",")].join(";") : "none";
  return (data.generated_at || "") + "|" + forecast;
}

// Reload the chart images when the data or the language changed.
function renderCharts(data) {
  const version = chartVersion(data);
  const reload = version !== state.chartVersion || state.lang !== state.chartLang;
  for (const img of document.querySelectorAll("img[data-chart]")) {
    const name = img.dataset.chart;
    img.alt = chartAlt(name, data);
    if (reload) {
      // A chart that fails to load is fetched again with the next retry.
      img.onerror = () => { state.chartVersion = null; noteFailure(); };
      const query = new URLSearchParams({ lang: state.lang, v: version });
      img.src = "/api/charts/" + encodeURIComponent(name) + ".svg?" + query.toString();
    }
  }
  state.chartVersion = version;
  state.chartLang = state.lang;
  $("cap-weather").textContent = t(state.lang, "cap_weather");
  $("cap-demand").textContent = t(state.lang, data.forecast ? "cap_demand" : "cap_demand_no_forecast");
  $("cap-supply").textContent = t(state.lang, "cap_supply");
  $("cap-balance").textContent = t(state.lang, "cap_balance");
  $("cap-history").textContent = t(state.lang, "cap_history");
}

function renderIncidentNotice(data) {
  const box = $("incident");
  if (data.incident === null || data.incident === undefined) {
    box.hidden = true;
    box.textContent = "";
    return;
  }
  setText(box, t(state.lang, "incident_open_banner", { id: data.incident }));
  box.hidden = false;
}

function render() {
  const data = state.data;
  if (!data) return;
  const estimation = data.mode === "estimation";
  $("banner").hidden = !estimation;
  // The reason is technical (English); the sentence around it is the page's.
  setText($("notice"), !estimation ? ""
    : t(state.lang, "notice_estimation", { reason: data.degradation || t(state.lang, "notice_no_live_yet") }));
  document.body.dataset.mode = data.mode;
  $("mode").textContent = t(state.lang, "mode_" + data.mode);
  const site = data.site || {};
  // "48,85 ; 2,35" in French, where the decimal comma would make a comma
  // between the coordinates ambiguous.
  const coordinates = known(site.latitude) && known(site.longitude)
    ? number(site.latitude, 2) + (state.lang === "fr" ? " ; " : ", ") + number(site.longitude, 2)
    : "—";
  $("site").textContent = (site.name || "—") + " (" + coordinates + (site.timezone ? ", " + site.timezone : "") + ")";
  const provenance = data.weather && data.weather.provenance;
  $("provenance").textContent = provenance ? t(state.lang, "prov_" + provenance) : "—";
  renderAge();
  $("last-live").textContent = data.last_live_at ? when(data.last_live_at) : t(state.lang, "never");
  $("generated").textContent = when(data.generated_at);
  $("report-time").textContent = when(data.generated_at);
  renderBreaker(data.breaker);
  renderPredictions(data.forecast);
  renderIncidentNotice(data);
  renderTiles(data.kpis || {});
  renderCharts(data);
}

function renderTimeline() {
  const list = state.incidents || [];
  const since = state.incidentsFetchedAt ? (Date.now() - state.incidentsFetchedAt) / 1000 : 0;
  const items = list.map(incident => {
    const item = el("li", "event " + (incident.open ? "open" : "closed"));
    const head = el("p", "event-head");
    const time = el("time", "event-time", when(incident.start));
    time.dateTime = incident.start;
    head.append(time, " ", el("strong", null, "#" + incident.id + " " + label("component_", incident.component) + " — " + label("kind_", incident.kind)), " ",
      el("span", "pill " + (incident.open ? "critical" : "ok"), t(state.lang, incident.open ? "incident_open" : "incident_closed")), " ",
      el("span", "muted", t(state.lang, incident.open ? "incident_open_for" : "incident_duration", {
        time: duration(incident.open && known(incident.duration_s) ? incident.duration_s + since : incident.duration_s),
      })));
    item.append(head);
    const changes = (incident.mode_changes || []).map(c =>
      t(state.lang, "mode_" + c.from) + " → " + t(state.lang, "mode_" + c.to) + " (" + when(c.at) + ")");
    if (changes.length) item.append(el("p", "event-changes", t(state.lang, "incident_changes_list", { changes: changes.join(", ") })));
    const details = incident.resolution ? incident.details + " — " + incident.resolution : incident.details;
    if (details) item.append(el("p", "event-details", details));
    return item;
  });
  $("timeline").replaceChildren(...items);
  $("timeline").hidden = items.length === 0;
  // Never "no incident" for a history that could not be loaded.
  const loaded = state.incidents !== null;
  $("no-incidents").hidden = !loaded || items.length !== 0 || !state.journalAvailable || state.incidentsFailed;
  $("journal-missing").hidden = state.journalAvailable;
  $("incidents-error").hidden = !state.incidentsFailed;
  $("timeline").classList.toggle("stale", state.incidentsFailed);
}

function renderUpdated() {
  $("updated").textContent = state.updatedAt
    ? t(state.lang, "updated_at", { time: clockTime(state.updatedAt) })
    : "";
}

function renderLive() {
  $("live").textContent = t(state.lang, "live_" + state.live);
  $("live").dataset.state = state.live;
}

let refreshing = null;
let refreshAgain = false;

// Fetch the dashboard and the incidents; concurrent calls coalesce into one
// more fetch after the one in flight.
async function refresh() {
  if (refreshing) { refreshAgain = true; return refreshing; }
  refreshing = (async () => {
    do {
      refreshAgain = false;
      await fetchAll();
    } while (refreshAgain);
  })();
  try { await refreshing; } finally { refreshing = null; }
}

// Why a fetch failed, for the offline notice: [i18n key, vars].
class FetchError extends Error {
  constructor(key, vars) { super(key); this.key = key; this.vars = vars || null; }
}

// GET `url` as JSON within FETCH_TIMEOUT_MS; `check(body)` says whether the
// answer has the expected shape. Throws a FetchError: no answer in time,
// unreachable, an HTTP error (with the server's message), or an answer
// that is not what was expected.
async function fetchJson(url, check) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), FETCH_TIMEOUT_MS);
  let response;
  try {
    response = await fetch(url, { cache: "no-store", signal: controller.signal });
  } catch (e) {
    clearTimeout(timer);
    throw new FetchError(e && e.name === "AbortError" ? "offline_timeout" : "offline");
  }
  try {
    if (!response.ok) {
      const message = await errorMessage(response);
      throw new FetchError("offline_http", { detail: "HTTP " + response.status + (message ? ", " + message : "") });
    }
    let body;
    try { body = await response.json(); } catch (e) {
      throw new FetchError(e && e.name === "AbortError" ? "offline_timeout" : "offline_invalid");
    }
    if (!check(body)) throw new FetchError("offline_invalid");
    return body;
  } finally {
    clearTimeout(timer);
  }
}

function isObject(v) { return v !== null && typeof v === "object" && !Array.isArray(v); }

function renderOffline() {
  const [key, vars] = state.offline;
  setText($("offline"), t(state.lang, key, vars || undefined));
}

function noteOffline(e) {
  state.offline = e instanceof FetchError ? [e.key, e.vars] : ["offline_invalid", null];
  renderOffline();
  $("offline").hidden = false;
}

async function fetchAll() {
  let ok = true;
  try {
    const body = await fetchJson("/api/dashboard", b => isObject(b) && typeof b.mode === "string");
    const previous = [state.data, state.fetchedAt];
    state.data = body;
    state.fetchedAt = Date.now();
    state.dashboardFailed = false;
    try {
      render();
    } catch (e) {
      // An answer this page cannot show: keep showing the last one, with
      // its age.
      [state.data, state.fetchedAt] = previous;
      render();
      throw new FetchError("offline_invalid");
    }
    $("offline").hidden = true;
    state.updatedAt = new Date();
    renderUpdated();
  } catch (e) {
    noteOffline(e);
    state.dashboardFailed = true;
    ok = false;
  }
  try {
    const body = await fetchJson("/api/incidents?limit=" + INCIDENT_LIMIT,
      b => isObject(b) && Array.isArray(b.incidents));
    state.incidents = body.incidents;
    state.incidentsFetchedAt = Date.now();
    state.journalAvailable = body.journal_available !== false;
    state.incidentsFailed = false;
  } catch (e) {
    // Said on the page (the last list, if any, stays, marked stale).
    state.incidentsFailed = true;
    ok = false;
  }
  try {
    renderTimeline();
  } catch (e) {
    state.incidentsFailed = true;
    ok = false;
  }
  if (ok) {
    state.failed = false;
    state.retryMs = 0;
  } else {
    noteFailure();
    // The tiles say their verdict is not current.
    if (state.data && state.dashboardFailed) renderTiles(state.data.kpis || {});
  }
}

// Something failed to load: the tick retries, with a growing delay, even
// while the events stream is up (it only says when there is news).
function noteFailure() {
  state.failed = true;
  state.failedAt = Date.now();
  state.retryMs = Math.min(POLL_MS, Math.max(AGE_TICK_MS, state.retryMs * 2));
}

// Every few seconds: ages and waits move on; a failed fetch is retried; a
// new hour (new hourly KPIs) is fetched at once.
function tick() {
  if (state.data) {
    renderAge();
    renderBreaker(state.data.breaker);
    renderPredictions(state.data.forecast);
    renderTiles(state.data.kpis || {});
  }
  if (state.incidents) renderTimeline();
  // A new hour (new hourly KPIs) is fetched at once, once: while fetches
  // fail, the retries' growing delay decides.
  const hour = ms => Math.floor(ms / 3600000);
  const now = hour(Date.now());
  const newHour = state.fetchedAt && now !== hour(state.fetchedAt) && now !== state.hourTried;
  const retry = state.failed && Date.now() - state.failedAt >= state.retryMs;
  if (newHour) state.hourTried = now;
  if (newHour || retry) refresh();
}

function startPolling() {
  if (state.poll === null) state.poll = setInterval(refresh, POLL_MS);
}

function stopPolling() {
  if (state.poll !== null) clearInterval(state.poll);
  state.poll = null;
}

// Follow the server's events (one stream shared by the browser's tabs, see
// events.js); poll while they fail.
function onLive(live) {
  if (live === "sse") stopPolling();
  else if (live === "poll") startPolling();
  // The stream just went down: find out now whether the server is there,
  // not at the first poll.
  if (live === "poll" && state.live !== "poll") refresh();
  state.live = live;
  renderLive();
}

function connectEvents() {
  followEvents(() => { refresh(); }, onLive, via => { $("live").dataset.via = via; });
}

// The CSV downloads in the dialect of the page's language: a spreadsheet
// in a French locale reads `;` between fields and decimal commas.
function renderExportLinks() {
  for (const id of ["export", "export-history", "export-forecasts"]) {
    const link = $(id);
    const url = new URL(link.getAttribute("href"), window.location.href);
    if (state.lang === "fr") url.searchParams.set("locale", "fr");
    else url.searchParams.delete("locale");
    link.setAttribute("href", url.pathname + url.search);
  }
}

function setLang(lang) {
  state.lang = lang;
  storeLang(lang);
  applyStatic(lang);
  renderExportLinks();
  renderLive();
  renderUpdated();
  renderOffline();
  render();
  renderTimeline();
}

function showStatus(text, level) {
  const box = $("action-status");
  box.textContent = text;
  box.className = level || "";
  box.hidden = false;
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    return (body && body.error && body.error.message) || response.statusText;
  } catch (e) {
    return response.statusText;
  }
}

async function regenerate(token) {
  showStatus(t(state.lang, "regen_running"), "info");
  const headers = { "Accept": "application/json" };
  if (token) headers["Authorization"] = "Bearer " + token;
  let response;
  try {
    response = await fetch("/api/predictions/generate", { method: "POST", headers, cache: "no-store" });
  } catch (e) {
    showStatus(t(state.lang, "regen_network"), "critical");
    return;
  }
  if (response.ok) {
    let body = {};
    try { body = await response.json(); } catch (e) { /* an empty body is fine */ }
    showStatus(t(state.lang, "regen_ok", { model: body.model || "?", tier: body.tier ? label("tier_", body.tier) : "?" }), "ok");
    refresh();
    return;
  }
  const message = await errorMessage(response);
  switch (response.status) {
    case 401: showStatus(t(state.lang, "regen_401"), "critical"); break;
    case 403: showStatus(t(state.lang, "regen_403", { message }), "critical"); break;
    case 429: {
      const retry = Number(response.headers.get("Retry-After"));
      showStatus(t(state.lang, "regen_429", { retry: retry > 0 ? duration(retry) : t(state.lang, "retry_soon") }), "warning");
      break;
    }
    case 503: showStatus(t(state.lang, "regen_503", { message }), "warning"); break;
    default: showStatus(t(state.lang, "regen_other", { status: response.status, message }), "critical");
  }
}

function wireActions() {
  for (const button of document.querySelectorAll("button[data-lang]")) {
    button.addEventListener("click", () => setLang(button.dataset.lang));
  }
  const dialog = $("token-dialog");
  $("regenerate").addEventListener("click", () => {
    $("token").value = "";
    if (typeof dialog.showModal === "function") {
      dialog.showModal();
    } else {
      regenerate(window.prompt(t(state.lang, "token_label")) || "");
    }
  });
  $("token-cancel").addEventListener("click", () => dialog.close());
  $("token-form").addEventListener("submit", event => {
    event.preventDefault();
    const token = $("token").value.trim();
    dialog.close();
    regenerate(token);
  });
  $("print").addEventListener("click", () => window.print());
}

applyStatic(state.lang);
renderExportLinks();
renderLive();
wireActions();
refresh();
connectEvents();
setInterval(tick, AGE_TICK_MS);
