//! The dashboard page's static files, embedded in the binary and served
//! under `/assets/{file}` (no CDN: the page works offline).
//!
//! | file | what it is |
//! |---|---|
//! | `app.js` | the page's script (an ES module): data, tiles, banner, charts, timeline, live updates, actions |
//! | `events.js` | the server's events (`/api/events`), one stream shared by the browser's tabs |
//! | `events-worker.js` | the shared worker that holds that stream and relays it to the tabs |
//! | `i18n.js` | French and English labels and the choice between them |
//! | `app.css` | the screen styles |
//! | `print.css` | the printed report (A4: KPIs, charts, incidents; no buttons) |
//! | `favicon.svg` | the icon |
//!
//! The page itself, [`INDEX_HTML`], is served at `/`. No file holds an
//! inline script or style, so the page works under
//! `Content-Security-Policy: default-src 'self'`. Files are answered with
//! `Cache-Control: no-cache` (revalidated, so a new binary's files are
//! picked up); an unknown file is a 404 with a JSON error body.
//!
//! ```
//! use spe_server_example::assets;
//!
//! let js = assets::find("app.js").expect("embedded");
//! assert_eq!(js.content_type, "text/javascript; charset=utf-8");
//! assert!(assets::find("../Cargo.toml").is_none());
//! ```

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// The dashboard page (HTML), served at `/`.
pub const INDEX_HTML: &str = include_str!("../assets/index.html");

/// An embedded file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    /// Its name under `/assets/`.
    pub name: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its content.
    pub body: &'static str,
}

/// Every file served under `/assets/`.
pub const ASSETS: [Asset; 7] = [
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/app.js"),
    },
    Asset {
        name: "events.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/events.js"),
    },
    Asset {
        name: "events-worker.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/events-worker.js"),
    },
    Asset {
        name: "i18n.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_str!("../assets/i18n.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../assets/app.css"),
    },
    Asset {
        name: "print.css",
        content_type: "text/css; charset=utf-8",
        body: include_str!("../assets/print.css"),
    },
    Asset {
        name: "favicon.svg",
        content_type: "image/svg+xml",
        body: include_str!("../assets/favicon.svg"),
    },
];

/// The embedded file named `name`, if any.
pub fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.name == name)
}

/// `GET /assets/{file}`: an embedded file, or a 404 with a JSON body.
pub async fn asset(Path(file): Path<String>) -> Response {
    match find(&file) {
        Some(asset) => (
            [
                (header::CONTENT_TYPE, asset.content_type),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            asset.body,
        )
            .into_response(),
        None => ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no asset {file:?}"),
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use axum::http::{Method, StatusCode, header};
    use serde_json::Value;

    use super::*;
    use crate::test_support::{Behaviour, call, header_str, rig_with};

    /// `text` without its comments: HTML `<!-- -->`, CSS and JS `/* */`, and
    /// JS lines that start with `//` (a `//` after code is left alone, so a
    /// URL in a string is still seen).
    fn without_comments(text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        loop {
            let next = [("<!--", "-->"), ("/*", "*/")]
                .into_iter()
                .filter_map(|(open, close)| rest.find(open).map(|i| (i, open, close)))
                .min_by_key(|(i, _, _)| *i);
            let Some((i, open, close)) = next else {
                out.push_str(rest);
                break;
            };
            out.push_str(&rest[..i]);
            let after = &rest[i + open.len()..];
            rest = after.find(close).map_or("", |j| &after[j + close.len()..]);
        }
        out.lines()
            .filter(|line| !line.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The page and every asset, by name.
    fn every_file() -> Vec<(&'static str, &'static str)> {
        std::iter::once(("index.html", INDEX_HTML))
            .chain(ASSETS.iter().map(|a| (a.name, a.body)))
            .collect()
    }

    /// The values of attribute `name` in `html`.
    fn attribute_values<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
        let needle = format!(" {name}=\"");
        html.match_indices(&needle)
            .filter_map(|(i, _)| {
                let value = &html[i + needle.len()..];
                value.find('"').map(|end| &value[..end])
            })
            .collect()
    }

    /// The keys of the `lang: { ... }` table in `i18n.js`.
    fn i18n_keys(lang: &str) -> BTreeSet<String> {
        let js = find("i18n.js").map_or("", |a| a.body);
        let start = js
            .find(&format!("\n  {lang}: {{\n"))
            .unwrap_or_else(|| panic!("no {lang} table"));
        let table = &js[start..];
        let end = table.find("\n  },").unwrap_or(table.len());
        table[..end]
            .lines()
            .skip(2)
            .filter_map(|line| {
                let line = line.strip_prefix("    ")?;
                let (key, _) = line.split_once(": ")?;
                key.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                    .then(|| key.to_owned())
            })
            .collect()
    }

    #[tokio::test]
    async fn every_asset_is_served_with_its_content_type() {
        let rig = rig_with(Behaviour::Refused, false);
        for asset in &ASSETS {
            let uri = format!("/assets/{}", asset.name);
            let (status, headers, body) = call(&rig.app, Method::GET, &uri).await;
            assert_eq!(status, StatusCode::OK, "{uri}");
            assert_eq!(
                header_str(&headers, header::CONTENT_TYPE),
                Some(asset.content_type),
                "{uri}"
            );
            assert_eq!(
                header_str(&headers, header::CACHE_CONTROL),
                Some("no-cache"),
                "{uri}"
            );
            assert_eq!(
                header_str(&headers, header::X_CONTENT_TYPE_OPTIONS),
                Some("nosniff"),
                "{uri}"
            );
            assert_eq!(body, asset.body.as_bytes(), "{uri}");
        }
        let expected = [
            ("app.js", "text/javascript"),
            ("events.js", "text/javascript"),
            ("events-worker.js", "text/javascript"),
            ("i18n.js", "text/javascript"),
            ("app.css", "text/css"),
            ("print.css", "text/css"),
            ("favicon.svg", "image/svg+xml"),
        ];
        for (name, kind) in expected {
            assert!(
                find(name).is_some_and(|a| a.content_type.starts_with(kind)),
                "{name}"
            );
        }
    }

    #[tokio::test]
    async fn unknown_assets_are_json_404s() {
        let rig = rig_with(Behaviour::Refused, false);
        for uri in [
            "/assets/nope.js",
            "/assets/index.html",
            "/assets/..%2FCargo.toml",
            "/assets/APP.JS",
            "/assets/app.js.map",
        ] {
            let (status, headers, body) = call(&rig.app, Method::GET, uri).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
            assert!(
                header_str(&headers, header::CONTENT_TYPE)
                    .is_some_and(|t| t.starts_with("application/json")),
                "{uri}"
            );
            let json: Value = serde_json::from_slice(&body).expect("JSON");
            assert_eq!(json["error"]["code"], "not_found", "{uri}");
        }
    }

    #[test]
    fn nothing_is_fetched_from_outside() {
        for (name, body) in every_file() {
            // The SVG namespace is a name, not a download.
            let code = without_comments(body).replace("http://www.w3.org/2000/svg", "");
            for needle in ["http://", "https://", "//cdn", "@import", "url("] {
                assert!(!code.contains(needle), "{name} contains {needle:?}");
            }
        }
        // The page links only to its own files and API.
        for value in attribute_values(INDEX_HTML, "src")
            .into_iter()
            .chain(attribute_values(INDEX_HTML, "href"))
        {
            assert!(
                value.starts_with('/') && !value.starts_with("//") || value.starts_with('#'),
                "{value}"
            );
        }
    }

    #[test]
    fn the_comment_stripper_keeps_urls_in_code() {
        let js = "// https://docs\nfetch(\"https://cdn.example/x.js\"); /* http://a */ x();";
        let code = without_comments(js);
        assert!(code.contains("https://cdn.example"), "{code}");
        assert!(
            !code.contains("https://docs") && !code.contains("http://a"),
            "{code}"
        );
        assert_eq!(without_comments("a<!-- b -->c"), "ac");
    }

    #[test]
    fn the_page_works_under_a_strict_content_security_policy() {
        // No inline script, style or event handler: `default-src 'self'` allows none.
        for (i, _) in INDEX_HTML.match_indices("<script") {
            let tag = &INDEX_HTML[i..INDEX_HTML[i..]
                .find('>')
                .map_or(INDEX_HTML.len(), |e| i + e)];
            assert!(tag.contains(r#" src="/assets/"#), "{tag}");
            assert!(
                INDEX_HTML[i..].starts_with(&format!("{tag}></script>")),
                "{tag}"
            );
        }
        assert!(!INDEX_HTML.contains("<style"));
        assert!(!INDEX_HTML.contains(" style="));
        for attribute in ["onclick", "onload", "onerror", "onsubmit", "onchange"] {
            assert!(!INDEX_HTML.contains(attribute), "{attribute}");
        }
        // Every file the page and its scripts name is embedded.
        let mut named: Vec<String> = attribute_values(INDEX_HTML, "src")
            .into_iter()
            .chain(attribute_values(INDEX_HTML, "href"))
            .filter_map(|v| v.strip_prefix("/assets/").map(str::to_owned))
            .collect();
        for asset in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            for (i, _) in asset.body.match_indices("from \"./") {
                let rest = &asset.body[i + "from \"./".len()..];
                named.push(rest[..rest.find('"').unwrap_or(0)].to_owned());
            }
        }
        assert!(named.len() >= 5, "{named:?}");
        for name in &named {
            assert!(find(name).is_some(), "{name} is not embedded");
        }
        // The JS is an ES module.
        assert!(INDEX_HTML.contains(r#"<script type="module" src="/assets/app.js">"#));
        // The printed report has its own stylesheet.
        assert!(INDEX_HTML.contains(r#"href="/assets/print.css" media="print""#));
    }

    #[test]
    fn the_page_has_what_an_operator_needs() {
        let page = INDEX_HTML;
        // The mode banner, in both languages, announced to screen readers.
        assert!(page.contains("Mode Estimation — données simulées"));
        assert!(page.contains("Estimation mode — simulated data"));
        assert!(page.contains(r#"<div id="banner" role="alert" aria-live="assertive" hidden>"#));
        for id in [
            "tiles",
            "breaker",
            "age",
            "mode",
            "provenance",
            "timeline",
            "incident",
            "token-dialog",
        ] {
            assert!(page.contains(&format!(r#"id="{id}""#)), "{id}");
        }
        // The actions: export, regenerate, print, the language switch.
        assert!(page.contains(r#"href="/api/export.csv""#));
        for id in ["regenerate", "print"] {
            assert!(
                page.contains(&format!(r#"<button type="button" id="{id}""#)),
                "{id}"
            );
        }
        assert!(page.contains(r#"data-lang="fr""#) && page.contains(r#"data-lang="en""#));
        assert!(
            page.contains(r#"type="password""#),
            "the token is not shown"
        );
        // The four charts.
        for chart in ["weather", "demand", "supply", "balance"] {
            assert!(
                page.contains(&format!(r#"data-chart="{chart}""#)),
                "{chart}"
            );
        }
        let app = find("app.js").map_or("", |a| a.body);
        for api in [
            "/api/dashboard",
            "/api/incidents",
            "/api/charts/",
            "/api/predictions/generate",
            "Authorization",
            "./events.js",
        ] {
            assert!(app.contains(api), "app.js does not use {api}");
        }
        // The events: one stream, opened by the shared worker (or the tab).
        let events = find("events.js").map_or("", |a| a.body);
        for used in ["/api/events", "\"snapshot\"", "/assets/events-worker.js"] {
            assert!(events.contains(used), "events.js does not use {used}");
        }
        let worker = find("events-worker.js").map_or("", |a| a.body);
        assert!(worker.contains("from \"./events.js\""));
        // Print: no buttons on paper, A4.
        let print = find("print.css").map_or("", |a| a.body);
        assert!(print.contains("size: A4"));
        assert!(print.contains(".actions") && print.contains("display: none"));
    }

    #[test]
    fn both_languages_have_every_label() {
        let fr = i18n_keys("fr");
        let en = i18n_keys("en");
        assert!(fr.len() > 50, "{fr:?}");
        assert_eq!(
            fr.symmetric_difference(&en).collect::<Vec<_>>(),
            Vec::<&String>::new(),
            "keys in one language only"
        );
        // Every static label of the page.
        for key in attribute_values(INDEX_HTML, "data-i18n")
            .into_iter()
            .chain(attribute_values(INDEX_HTML, "data-i18n-aria-label"))
        {
            assert!(fr.contains(key), "data-i18n={key} has no label");
        }
        // Every label the script asks for by name…
        let app = find("app.js").map_or("", |a| a.body);
        for (i, _) in app.match_indices("t(state.lang, \"") {
            let rest = &app[i + "t(state.lang, \"".len()..];
            let end = rest.find('"').unwrap_or(0);
            if rest[end..].starts_with("\" +") {
                continue; // a prefix: the keys built from it are checked below
            }
            let key = &rest[..end];
            assert!(fr.contains(key), "app.js asks for {key}");
        }
        // …and the ones it builds from the server's names.
        let built = [
            "mode_nominal",
            "mode_estimation",
            "prov_live",
            "prov_synthetic",
            "prov_cached",
            "prov_fallback",
            "status_ok",
            "status_warning",
            "status_critical",
            "status_na",
            "breaker_closed",
            "breaker_open",
            "breaker_half_open",
            "breaker_forced_open",
            "breaker_disabled",
            "kpi_demand_mw",
            "kpi_supply_mw",
            "kpi_balance_mw",
            "kpi_coverage_ratio",
            "kpi_renewable_share",
            "kpi_peak_demand_mw",
            "kpi_data_freshness_s",
            "kpi_forecast_error",
            "kpi_self_sufficiency",
            "kpi_solar",
            "kpi_wind",
            "kpi_other",
            "kpi_imports",
            "live_sse",
            "live_poll",
            "live_connecting",
            "tier_primary",
            "tier_fallback",
            "tier_cache",
        ];
        for key in built {
            assert!(fr.contains(key), "{key}");
        }
    }
}
