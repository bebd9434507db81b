// The server's events (/api/events, Server-Sent Events), followed once per
// browser: a browser keeps at most six HTTP/1.1 connections to a server, so
// a stream per tab would leave a seventh tab waiting for a connection. The
// tabs share one stream through a shared worker (events-worker.js); where
// shared workers are missing or fail to start, a tab opens its own stream.
//
// Nothing here runs on import: the worker imports openStream too.
"use strict";

const WORKER = "/assets/events-worker.js";
const RETRY_MS = 30000;
// The server sends a "ping" event after 15 s of quiet: three missed in a
// row, and the stream is taken for dead (a frozen server, a network path
// gone without a reset), closed and opened again.
const SILENCE_MS = 45000;

// Open the events stream. onSnapshot() at each event; onLive(live) when the
// stream goes up ("sse") or down ("poll": poll meanwhile). The browser
// reconnects by itself unless the answer was not an event stream (then the
// stream is closed: retry later); a stream silent for SILENCE_MS is closed
// and opened again.
export function openStream(onSnapshot, onLive) {
  if (typeof EventSource !== "function") { onLive("poll"); return; }
  const events = new EventSource("/api/events");
  let watchdog = null;
  const heard = () => {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => {
      events.close();
      onLive("poll");
      openStream(onSnapshot, onLive);
    }, SILENCE_MS);
  };
  heard();
  events.addEventListener("open", () => { heard(); onLive("sse"); });
  events.addEventListener("snapshot", () => { heard(); onSnapshot(); });
  events.addEventListener("ping", heard);
  events.addEventListener("error", () => {
    onLive("poll");
    if (events.readyState === EventSource.CLOSED) {
      clearTimeout(watchdog);
      setTimeout(() => openStream(onSnapshot, onLive), RETRY_MS);
    }
  });
}

// Follow the events from this tab, through the shared worker if it starts.
// onVia(via) says how: "shared", then "direct" if the worker fails.
export function followEvents(onSnapshot, onLive, onVia) {
  let direct = false;
  const goDirect = () => {
    if (direct) return;
    direct = true;
    onVia("direct");
    openStream(onSnapshot, onLive);
  };
  if (typeof SharedWorker !== "function") { goDirect(); return; }
  let port = null;
  const connect = () => {
    let worker;
    try {
      worker = new SharedWorker(WORKER, { type: "module", name: "spe-events" });
    } catch (e) {
      goDirect();
      return;
    }
    // The worker's script failed to load or run.
    worker.addEventListener("error", goDirect);
    port = worker.port;
    port.addEventListener("message", message => {
      const m = message.data || {};
      if (direct) return;
      if (m.type === "snapshot") onSnapshot();
      else if (m.type === "live") onLive(m.live);
      else if (m.type === "unsupported") goDirect();
    });
    port.start();
  };
  onVia("shared");
  connect();
  // A page put in the back-forward cache says goodbye, and comes back in.
  window.addEventListener("pagehide", event => {
    if (port && event.persisted) { port.postMessage({ type: "bye" }); port = null; }
  });
  window.addEventListener("pageshow", event => {
    if (event.persisted && port === null && !direct) connect();
  });
  window.addEventListener("beforeunload", () => { if (port) port.postMessage({ type: "bye" }); });
}
