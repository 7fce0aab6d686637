/* The live queue's connection: one EventSource on /events per page. Each event becomes a DOM
   event on <body>: "live:report" (detail {kind, id}) at once, and "live:changed" at most once a
   second (the first at once, the last of a burst too), on which counters are refetched. The
   stream ends with "bye" (logged out, blocked) and when the page is left; a refused stream (too
   many tabs) leaves the page working as before, without live updates. body[data-live] says
   whether the page is listening. */
(function () {
  "use strict";
  if (!window.EventSource) return;
  var source = null;
  var opened = false;
  var timer = null;
  var last = 0;

  function fire(name, detail) {
    document.body.dispatchEvent(new CustomEvent(name, { detail: detail || {} }));
  }

  function changed() {
    if (timer) return;
    var wait = Math.max(0, last + 1000 - Date.now());
    timer = setTimeout(function () { timer = null; last = Date.now(); fire("live:changed"); }, wait);
  }

  function close() {
    if (source) source.close();
    source = null;
    document.body.dataset.live = "off";
  }

  function connect() {
    if (source) return;
    source = new EventSource("/events");
    source.addEventListener("hello", function () {
      document.body.dataset.live = "on";
      if (opened) changed(); // back after a dropped connection: catch up
      opened = true;
    });
    source.addEventListener("report", function (e) {
      var detail;
      try { detail = JSON.parse(e.data); } catch (err) { return; }
      if (detail.kind !== "resync") fire("live:report", detail);
      changed();
    });
    source.addEventListener("bye", close);
    source.addEventListener("error", function () {
      if (source && source.readyState === EventSource.CLOSED) close(); // refused: stay quiet
    });
  }

  window.addEventListener("pagehide", close);
  window.addEventListener("pageshow", function (e) { if (e.persisted) connect(); });
  connect();
})();
