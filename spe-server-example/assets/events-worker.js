// The dashboard's shared worker: one events stream (/api/events) for every
// tab of the browser, relayed to each tab's port. Tabs get {type: "live",
// live} when the stream goes up or down (and at once when they connect),
// {type: "snapshot"} at each event, and {type: "unsupported"} if this
// browser has no EventSource in workers (the tab then opens its own). A tab
// leaving says {type: "bye"}; the browser ends the worker, and so the
// stream, when the last tab is gone.
"use strict";

import { openStream } from "./events.js";

const ports = new Set();
let live = "connecting";
let opened = false;

function post(message) {
  for (const port of ports) port.postMessage(message);
}

self.addEventListener("connect", event => {
  const port = event.ports[0];
  ports.add(port);
  port.addEventListener("message", message => {
    if (message.data && message.data.type === "bye") ports.delete(port);
  });
  port.start();
  if (typeof EventSource !== "function") {
    port.postMessage({ type: "unsupported" });
    ports.delete(port);
    return;
  }
  port.postMessage({ type: "live", live });
  if (!opened) {
    opened = true;
    openStream(
      () => post({ type: "snapshot" }),
      next => { live = next; post({ type: "live", live }); },
    );
  }
});
