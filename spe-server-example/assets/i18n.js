// SP-E dashboard: French and English labels, and the choice between them.
//
// The language is the one stored by the switch, else the first of the
// browser's languages that is French or English, else English. Static
// labels carry `data-i18n="key"` (text) or `data-i18n-aria-label="key"`.
"use strict";

export const LANGS = ["fr", "en"];
const STORAGE_KEY = "spe.lang";

const TEXT = {
  fr: {
    page_title: "SP-E — tableau de bord énergie",
    skip: "Aller au contenu",
    title: "SP-E — Pilotage énergétique",
    site: "Site :",
    actions: "Actions",
    export: "Exporter en CSV",
    export_history: "Historique 7 jours (CSV)",
    export_forecasts: "Prévisions J-1, 7 jours (CSV)",
    regenerate: "Régénérer les prévisions",
    print: "Imprimer un rapport",
    report: "Rapport d'exploitation SP-E",
    offline: "Serveur injoignable : affichage des dernières données reçues.",
    offline_http: "Le serveur répond en erreur ({detail}) : affichage des dernières données reçues.",
    offline_invalid: "Réponse du serveur illisible : affichage des dernières données reçues.",
    offline_timeout: "Le serveur ne répond pas : affichage des dernières données reçues.",
    status_stale: "non actualisé",
    incident_changes_list: "Changements de mode : {changes}",
    component_weather: "météo",
    component_prediction: "prévisions",
    component_cache: "cache",
    component_journal: "journal",
    component_store: "historique",
    kind_upstream_timeout: "source sans réponse (délai dépassé)",
    kind_upstream_5xx: "source en erreur (5xx)",
    kind_upstream_unreachable: "source injoignable",
    kind_upstream_rejected: "requête refusée par la source",
    kind_bad_payload: "données reçues invalides",
    kind_model_crash: "modèle de prévision en échec",
    kind_model_timeout: "modèle de prévision trop lent",
    kind_model_bad_output: "sortie du modèle invalide",
    kind_cache_corrupt: "cache corrompu",
    kind_store_corrupt: "historique corrompu",
    kind_journal_corrupt: "journal endommagé",
    kind_disk_error: "erreur disque",
    kind_other: "autre",
    state: "État du service",
    mode: "Mode",
    provenance: "Provenance",
    data_age: "Âge des données",
    last_live: "Dernière donnée réelle",
    breaker: "Disjoncteur météo",
    generated: "Données du",
    predictions: "Prévisions",
    predictions_none: "aucune pour le moment",
    predictions_made: "{model} ({tier}), il y a {age}",
    predictions_inputs: "à partir de données {provenance}",
    tier_primary: "modèle principal",
    tier_fallback: "modèle de secours",
    tier_cache: "en cache",
    updates: "Mises à jour",
    kpis: "Indicateurs de l'heure",
    charts: "Graphiques",
    incidents: "Chronologie des incidents",
    no_incidents: "Aucun incident enregistré.",
    notice_estimation: "Météo en direct indisponible ({reason}) : estimations simulées affichées.",
    notice_no_live_yet: "pas encore de données en direct",
    incidents_error: "Chronologie des incidents non chargée (le serveur n'a pas répondu) : nouvel essai en cours.",
    journal_missing: "Journal des incidents indisponible : les incidents ne sont que consignés dans les journaux du serveur.",
    footer: "SP-E — chaque valeur porte sa provenance : live (réelle), synthetic (simulée), cached (en cache), fallback (secours).",
    token_help: "Le serveur relance le moteur de prévision. Saisissez le jeton d'administration (laissez vide sur la machine du serveur si aucun jeton n'est configuré).",
    token_label: "Jeton d'administration",
    cancel: "Annuler",
    run: "Lancer",
    never: "jamais",
    mode_nominal: "nominal",
    mode_estimation: "estimation",
    prov_live: "réelle (live)",
    prov_synthetic: "simulée (synthetic)",
    prov_cached: "en cache (cached)",
    prov_fallback: "secours (fallback)",
    status_ok: "ok",
    status_warning: "attention",
    status_critical: "critique",
    status_na: "indisponible",
    kpi_demand_mw: "Demande",
    kpi_supply_mw: "Production",
    kpi_balance_mw: "Solde",
    kpi_coverage_ratio: "Couverture",
    kpi_renewable_share: "Part renouvelable",
    kpi_peak_demand_mw: "Pointe 24 h",
    kpi_data_freshness_s: "Fraîcheur des données",
    kpi_forecast_error: "Erreur de prévision (J-1)",
    kpi_self_sufficiency: "Autosuffisance",
    kpi_solar: "Solaire",
    kpi_wind: "Éolien",
    kpi_other: "Autres",
    kpi_imports: "Imports",
    kpi_at: "à {time}",
    kpi_not_available: "pas encore calculée",
    breaker_closed: "fermé (normal)",
    breaker_open: "ouvert",
    breaker_half_open: "semi-ouvert (essai en cours)",
    breaker_forced_open: "ouvert (forcé)",
    breaker_disabled: "désactivé",
    breaker_retry: "nouvel essai dans {time}",
    breaker_failures: "échecs {rate} sur {calls} appels",
    breaker_failures_one: "échecs {rate} sur 1 appel",
    incident_open_banner: "Incident n° {id} en cours — journalisé pour le RETEX.",
    incident_open: "en cours",
    incident_closed: "résolu",
    incident_duration: "durée {time}",
    incident_open_for: "ouvert depuis {time}",
    live_sse: "en direct (SSE)",
    live_poll: "toutes les 30 s (SSE indisponible)",
    live_connecting: "connexion…",
    updated_at: "Dernière mise à jour : {time}",
    chart_loading: "Chargement du graphique…",
    cap_weather: "Météo des 7 prochains jours (heure locale) : température et vent ; rayonnement solaire et nébulosité.",
    cap_demand: "Demande réelle, demande attendue selon la météo prévue et prévision avec ses intervalles à 80 % et 95 %.",
    cap_demand_no_forecast: "Demande réelle et demande attendue selon la météo prévue. Prévision indisponible pour le moment.",
    cap_supply: "Production empilée par source : solaire, éolien, autres, imports ; la demande en trait bleu.",
    cap_balance: "Solde heure par heure : excédent en vert, déficit en rouge ; en pointillés violets, production locale moins demande (l'écart que couvrent les imports).",
    cap_history: "Les 7 derniers jours tels qu'enregistrés : demande mesurée en bleu, estimée (pendant une panne) en gris pointillé, et en orange la prévision faite la veille pour chaque heure.",
    alt_weather: "Graphique météo sur 7 jours pour {site} : température actuelle {temp}, vent {wind}.",
    alt_demand: "Graphique de la demande pour {site} : demande actuelle {demand}, pointe sur 24 h {peak}. {forecast}",
    alt_supply: "Graphique de la production par source pour {site} : production actuelle {supply}, part renouvelable {share}.",
    alt_balance: "Graphique du solde production moins demande pour {site} : solde actuel {balance}.",
    alt_history: "Graphique de l'historique enregistré de la demande sur 7 jours pour {site}.",
    alt_forecast_yes: "Prévision avec intervalles à 80 % et 95 %.",
    alt_forecast_no: "Prévision indisponible.",
    regen_running: "Régénération des prévisions en cours…",
    regen_ok: "Prévisions régénérées ({model}, niveau {tier}).",
    regen_401: "Refusé (401) : jeton absent ou incorrect.",
    regen_403: "Refusé (403) : {message}",
    regen_429: "Trop de demandes (429) : réessayez dans {retry}.",
    regen_503: "Moteur de prévision indisponible (503) : {message}",
    regen_other: "Échec ({status}) : {message}",
    regen_network: "Serveur injoignable : la régénération n'a pas pu être demandée.",
    retry_soon: "quelques secondes",
  },
  en: {
    page_title: "SP-E — energy dashboard",
    skip: "Skip to content",
    title: "SP-E — Energy operations",
    site: "Site:",
    actions: "Actions",
    export: "Export CSV",
    export_history: "History, 7 days (CSV)",
    export_forecasts: "Day-ahead forecasts, 7 days (CSV)",
    regenerate: "Regenerate predictions",
    print: "Print a report",
    report: "SP-E operations report",
    offline: "Server unreachable: showing the last data received.",
    offline_http: "The server answers with an error ({detail}): showing the last data received.",
    offline_invalid: "The server's answer could not be read: showing the last data received.",
    offline_timeout: "The server does not answer: showing the last data received.",
    status_stale: "not updated",
    incident_changes_list: "Mode changes: {changes}",
    component_weather: "weather",
    component_prediction: "forecasts",
    component_cache: "cache",
    component_journal: "journal",
    component_store: "history",
    kind_upstream_timeout: "source not answering (timeout)",
    kind_upstream_5xx: "source error (5xx)",
    kind_upstream_unreachable: "source unreachable",
    kind_upstream_rejected: "request refused by the source",
    kind_bad_payload: "invalid data received",
    kind_model_crash: "forecast model failed",
    kind_model_timeout: "forecast model too slow",
    kind_model_bad_output: "invalid model output",
    kind_cache_corrupt: "corrupt cache",
    kind_store_corrupt: "corrupt history",
    kind_journal_corrupt: "damaged journal",
    kind_disk_error: "disk error",
    kind_other: "other",
    state: "Service state",
    mode: "Mode",
    provenance: "Provenance",
    data_age: "Data age",
    last_live: "Last live data",
    breaker: "Weather breaker",
    generated: "Data as of",
    predictions: "Predictions",
    predictions_none: "none yet",
    predictions_made: "{model} ({tier}), {age} ago",
    predictions_inputs: "from {provenance} history",
    tier_primary: "primary model",
    tier_fallback: "fallback model",
    tier_cache: "cached",
    updates: "Updates",
    kpis: "Indicators for this hour",
    charts: "Charts",
    incidents: "Incident timeline",
    no_incidents: "No incident recorded.",
    notice_estimation: "Live weather unavailable ({reason}): showing simulated estimates.",
    notice_no_live_yet: "no live data yet",
    incidents_error: "The incident timeline could not be loaded (the server did not answer): retrying.",
    journal_missing: "Incident journal unavailable: incidents are only written to the server's logs.",
    footer: "SP-E — every value carries its provenance: live, synthetic, cached, fallback.",
    token_help: "The server re-runs the prediction engine. Enter the admin token (leave it empty on the server's own machine when no token is configured).",
    token_label: "Admin token",
    cancel: "Cancel",
    run: "Run",
    never: "never",
    mode_nominal: "nominal",
    mode_estimation: "estimation",
    prov_live: "live",
    prov_synthetic: "synthetic",
    prov_cached: "cached",
    prov_fallback: "fallback",
    status_ok: "ok",
    status_warning: "warning",
    status_critical: "critical",
    status_na: "not available",
    kpi_demand_mw: "Demand",
    kpi_supply_mw: "Supply",
    kpi_balance_mw: "Balance",
    kpi_coverage_ratio: "Coverage",
    kpi_renewable_share: "Renewable share",
    kpi_peak_demand_mw: "24 h peak",
    kpi_data_freshness_s: "Data freshness",
    kpi_forecast_error: "Forecast error (last day)",
    kpi_self_sufficiency: "Self-sufficiency",
    kpi_solar: "Solar",
    kpi_wind: "Wind",
    kpi_other: "Other",
    kpi_imports: "Imports",
    kpi_at: "at {time}",
    kpi_not_available: "not computed yet",
    breaker_closed: "closed (normal)",
    breaker_open: "open",
    breaker_half_open: "half-open (probing)",
    breaker_forced_open: "open (forced)",
    breaker_disabled: "disabled",
    breaker_retry: "next try in {time}",
    breaker_failures: "{rate} failed of {calls} calls",
    breaker_failures_one: "{rate} failed of 1 call",
    incident_open_banner: "Incident #{id} open — journaled for the post-incident review.",
    incident_open: "open",
    incident_closed: "resolved",
    incident_duration: "lasted {time}",
    incident_open_for: "open for {time}",
    live_sse: "live (SSE)",
    live_poll: "every 30 s (SSE unavailable)",
    live_connecting: "connecting…",
    updated_at: "Last update: {time}",
    chart_loading: "Loading the chart…",
    cap_weather: "Weather for the next 7 days (local time): temperature and wind; solar radiation and cloud cover.",
    cap_demand: "Actual demand, demand expected from the weather forecast, and the forecast with its 80 % and 95 % intervals.",
    cap_demand_no_forecast: "Actual demand and demand expected from the weather forecast. No forecast available yet.",
    cap_supply: "Supply stacked by source: solar, wind, other, imports; demand as the blue line.",
    cap_balance: "Balance hour by hour: surplus in green, deficit in red; dashed purple, local production minus demand (the gap imports fill).",
    cap_history: "The last 7 days as recorded: measured demand in blue, estimated demand (during an outage) dashed grey, and in orange the forecast made a day before each hour.",
    alt_weather: "7-day weather chart for {site}: temperature now {temp}, wind {wind}.",
    alt_demand: "Demand chart for {site}: demand now {demand}, 24 h peak {peak}. {forecast}",
    alt_supply: "Supply by source chart for {site}: supply now {supply}, renewable share {share}.",
    alt_balance: "Supply minus demand chart for {site}: balance now {balance}.",
    alt_history: "Chart of the recorded demand over the last 7 days for {site}.",
    alt_forecast_yes: "Forecast with 80 % and 95 % intervals.",
    alt_forecast_no: "No forecast available.",
    regen_running: "Regenerating predictions…",
    regen_ok: "Predictions regenerated ({model}, tier {tier}).",
    regen_401: "Refused (401): missing or wrong token.",
    regen_403: "Refused (403): {message}",
    regen_429: "Too many requests (429): try again in {retry}.",
    regen_503: "Prediction engine unavailable (503): {message}",
    regen_other: "Failed ({status}): {message}",
    regen_network: "Server unreachable: the regeneration could not be requested.",
    retry_soon: "a few seconds",
  },
};

// The locale for numbers and dates (24-hour clock in both).
export function locale(lang) {
  return lang === "fr" ? "fr-FR" : "en-GB";
}

// The text of `key` in `lang`, with `{name}` placeholders filled from `vars`.
export function t(lang, key, vars) {
  const table = TEXT[lang] || TEXT.en;
  let text = key in table ? table[key] : (TEXT.en[key] !== undefined ? TEXT.en[key] : key);
  if (vars) {
    text = text.replace(/\{(\w+)\}/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
  }
  return text;
}

// The language to start with.
export function detectLang() {
  try {
    const stored = window.localStorage.getItem(STORAGE_KEY);
    if (LANGS.includes(stored)) return stored;
  } catch (e) {
    // Storage may be disabled: fall through to the browser's languages.
  }
  const wanted = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || ""];
  for (const tag of wanted) {
    const base = String(tag).toLowerCase().split("-")[0];
    if (LANGS.includes(base)) return base;
  }
  return "en";
}

// Remember the operator's choice.
export function storeLang(lang) {
  try {
    window.localStorage.setItem(STORAGE_KEY, lang);
  } catch (e) {
    // Not remembered: the page still switches.
  }
}

// Put the static labels of the page in `lang`.
export function applyStatic(lang) {
  document.documentElement.lang = lang;
  document.title = t(lang, "page_title");
  for (const el of document.querySelectorAll("[data-i18n]")) {
    el.textContent = t(lang, el.dataset.i18n);
  }
  for (const el of document.querySelectorAll("[data-i18n-aria-label]")) {
    el.setAttribute("aria-label", t(lang, el.dataset.i18nAriaLabel));
  }
  for (const button of document.querySelectorAll("button[data-lang]")) {
    button.setAttribute("aria-pressed", String(button.dataset.lang === lang));
  }
}
