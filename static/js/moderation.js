/* The report queue without the mouse: A accept, D decline, 1–9 reason, J/K move, F photo in full,
   Z undo, ? help. Focus moves to the next card as soon as a decision is sent; the server's answer
   replaces the decided card in place and updates the sticky bar (counter, last decision with its
   undo). Plain script, no build step; everything also works without it.

   The live queue (js/live.js brings the events): the cards on screen are claimed by this curator
   on the server, renewed every third of the lease while shown and released when the page is left
   (a beacon), so other curators are shown other cards. New cards — new photos, cards another
   curator let go — are fetched when the queue changes or this curator runs low, and appended at
   the end: focus and scroll stay where they are. A card decided by someone else turns into its
   decided state. */
(function () {
  "use strict";
  var queue = document.getElementById("queue");
  if (!queue) return;
  var help = document.getElementById("mod-help");
  var bar = document.getElementById("mod-bar");
  var restoring = null; // id of a card being undone: focus it when it comes back

  function cards() { return Array.prototype.slice.call(queue.querySelectorAll(".mod-card")); }
  function open(card) { return card.dataset.status === "reviewing" && !card.classList.contains("is-deciding"); }
  function cardOf(el) { return el && el.closest ? el.closest(".mod-card") : null; }

  function current() {
    var card = cardOf(document.activeElement);
    if (card && queue.contains(card)) return card;
    return cards().filter(open)[0] || null;
  }

  function neighbour(card, step, onlyOpen) {
    var all = cards();
    for (var i = all.indexOf(card) + step; i >= 0 && i < all.length; i += step) {
      if (!onlyOpen || open(all[i])) return all[i];
    }
    return null;
  }

  // The photo is shown from its thumbnail at once, then replaced by the full-size image as soon
  // as that has loaded (the very element that loaded it: photos are never cached, so setting the
  // same URL again would download it twice).
  function sharpen(card) {
    var link = card && card.querySelector(".mod-photo-link");
    if (!link || link.dataset.sharp) return;
    link.dataset.sharp = "1";
    var img = link.querySelector("img");
    var full = new Image();
    full.alt = img.alt;
    full.decoding = "async";
    full.onload = function () { if (img.isConnected) img.replaceWith(full); };
    full.src = link.dataset.full;
  }

  function below() { return bar ? bar.getBoundingClientRect().height + 8 : 8; }

  function focusCard(card) {
    if (!card) { pull(); return; } // nothing left on screen: ask for cards nobody has open
    card.focus({ preventScroll: true });
    var box = card.getBoundingClientRect();
    var top = below();
    if (box.top < top || box.top > window.innerHeight * 0.5) {
      window.scrollTo({ top: window.scrollY + box.top - top, behavior: "instant" });
    }
    sharpen(card);
    sharpen(neighbour(card, 1, true)); // the next photo is ready before the curator gets there
    var after = cards().slice(cards().indexOf(card) + 1).filter(open).length;
    var more = queue.querySelector(".mod-more a");
    if (more && after < 5 && window.htmx) window.htmx.trigger(more, "more");
    else if (!more && after < 5) pull();
  }

  function focusNext(card) {
    focusCard(neighbour(card, 1, true) || cards().filter(open)[0] || null);
  }

  // A decision leaves: mark the card and move on at once, without waiting for the server.
  document.body.addEventListener("htmx:beforeRequest", function (e) {
    var form = e.detail.elt;
    var card = cardOf(form);
    if (!card || !form.matches || !form.matches(".mod-approve, .mod-presets, .mod-free")) return;
    var details = card.querySelector(".mod-decline");
    if (details) details.open = false; // the sheet closes with the decision
    card.classList.add("is-deciding");
    if (!document.activeElement || document.activeElement === document.body || card.contains(document.activeElement)) {
      focusNext(card);
    }
  });

  function failed(e) {
    var card = cardOf(e.detail.elt);
    if (!card) return;
    card.classList.remove("is-deciding");
    if (!card.querySelector(".mod-notice")) {
      var p = document.createElement("p");
      p.className = "mod-notice";
      p.setAttribute("role", "alert");
      p.textContent = "Не получилось отправить решение — проверьте связь и попробуйте ещё раз.";
      card.prepend(p);
    }
  }
  document.body.addEventListener("htmx:responseError", failed);
  document.body.addEventListener("htmx:sendError", failed);

  // An undo link disappears when its time is up (the server would refuse it by then).
  function expire(root) {
    var forms = root.matches && root.matches(".mod-undo") ? [root] : root.querySelectorAll ? root.querySelectorAll(".mod-undo") : [];
    Array.prototype.forEach.call(forms, function (form) {
      var wait = Number(form.dataset.until) - Date.now();
      setTimeout(function () { form.remove(); }, Math.max(wait, 0));
    });
  }

  // New content came from the server (a decided or undone card, the bar's last decision, a page).
  document.body.addEventListener("htmx:load", function (e) {
    var el = e.target;
    expire(el);
    if (!el.classList || !el.classList.contains("mod-card")) return;
    if (queue.querySelectorAll("#" + el.id).length > 1) { el.remove(); return; } // already here
    var input = el.querySelector("input[aria-invalid=true]");
    if (input) { input.focus(); return; }
    if (restoring === el.dataset.id) { restoring = null; focusCard(el); return; }
    if (!document.activeElement || document.activeElement === document.body) focusNext(el);
  });

  // Z undoes this curator's newest decision that can still be undone. "Newest" is read from the
  // server's undo deadline, not from the order the answers happened to arrive in.
  function undoLast() {
    var newest = null;
    Array.prototype.forEach.call(document.querySelectorAll(".mod-undo"), function (form) {
      if (!newest || Number(form.dataset.until) > Number(newest.dataset.until)) newest = form;
    });
    if (!newest) return;
    restoring = newest.dataset.id;
    newest.requestSubmit();
  }

  // The photo: the whole picture at its own size on click (or F), the card's width again after.
  function toggleFull(card) {
    var link = card && card.querySelector(".mod-photo-link");
    if (!link) return;
    sharpen(card);
    var full = !card.classList.contains("is-full");
    card.classList.toggle("is-full", full);
    link.classList.toggle("is-full", full);
  }
  queue.addEventListener("click", function (e) {
    var link = e.target.closest && e.target.closest(".mod-photo-link");
    if (!link) return;
    e.preventDefault();
    toggleFull(cardOf(link));
  });

  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    var t = e.target;
    if (t.closest && t.closest("input, textarea, select, [contenteditable]")) {
      if (e.key === "Escape") t.blur();
      return; // keys do nothing while typing
    }
    if (e.key === "?" || (e.code === "Slash" && e.shiftKey)) {
      if (help.open) help.close(); else help.showModal();
      e.preventDefault();
      return;
    }
    if (help && help.open) return;
    var card = current();
    var details = card && card.querySelector(".mod-decline");
    var handled = true;
    switch (e.code) {
      case "KeyA":
        if (card && open(card)) card.querySelector(".mod-approve").requestSubmit();
        break;
      case "KeyD":
        if (details) { details.open = true; focusCard(card); }
        break;
      case "KeyF": toggleFull(card); break;
      case "KeyJ": focusCard(neighbour(card, 1, false)); break;
      case "KeyK": focusCard(neighbour(card, -1, false)); break;
      case "KeyZ": undoLast(); break;
      case "Escape": if (details) details.open = false; break;
      default:
        handled = false;
        if (/^[1-9]$/.test(e.key) && details && details.open) {
          var button = details.querySelector('[data-preset="' + e.key + '"]');
          if (button) { button.click(); handled = true; }
        }
    }
    if (handled) e.preventDefault();
  });

  var helpButton = document.querySelector("[data-help]");
  if (helpButton) helpButton.addEventListener("click", function () { help.showModal(); });

  // --- the live queue ---------------------------------------------------------------------------

  var freshUrl = queue.dataset.freshUrl;
  var countUrl = queue.dataset.countUrl;
  var token = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var pulling = false;
  var again = false;

  function shown() { return cards().filter(open).map(function (c) { return c.dataset.id; }); }

  // Cards nobody has on screen, appended after the last card; nothing else moves.
  function pull() {
    if (!freshUrl || queue.querySelector(".mod-more")) return; // the next page brings them
    if (pulling) { again = true; return; }
    pulling = true;
    queue.dataset.pulling = "1";
    fetch(freshUrl, { headers: { "HX-Request": "true" }, credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : ""; })
      .then(append, function () {})
      .then(function () {
        pulling = false;
        delete queue.dataset.pulling;
        if (again) { again = false; pull(); }
      });
  }

  function append(html) {
    var box = document.createElement("template");
    box.innerHTML = html;
    var fresh = Array.prototype.filter.call(box.content.querySelectorAll(".mod-card"), function (c) {
      return !document.getElementById(c.id);
    });
    var marker = box.content.querySelector(".mod-more, .mod-end");
    if (!fresh.length) return;
    Array.prototype.forEach.call(queue.querySelectorAll(".mod-end, .mod-empty"), function (el) { el.remove(); });
    fresh.forEach(function (card) {
      queue.appendChild(card);
      if (window.htmx) window.htmx.process(card);
    });
    if (marker) {
      queue.appendChild(marker);
      if (window.htmx) window.htmx.process(marker);
    }
  }

  function recount() {
    if (countUrl && window.htmx) window.htmx.ajax("GET", countUrl, { target: "#queue-count", swap: "outerHTML" });
  }

  // Another curator decided a card that is on this screen: show it decided. The event may also be
  // one's own decision arriving after it was undone (SQLite carries events once a second): a card
  // that is still open on the server is left as it is, with the decline sheet and whatever was
  // typed in it.
  document.body.addEventListener("live:report", function (e) {
    if (e.detail.kind !== "decided") return;
    var card = document.getElementById("report-" + e.detail.id);
    if (!card || !queue.contains(card) || !open(card) || !window.htmx) return;
    var here = location.pathname + location.search;
    card.dataset.recheck = "1";
    window.htmx.ajax("GET", "/reports/" + e.detail.id + "?next=" + encodeURIComponent(here),
      { target: card, swap: "outerHTML" });
  });
  document.body.addEventListener("htmx:beforeSwap", function (e) {
    var card = e.detail.target;
    if (!card || !card.dataset || !card.dataset.recheck) return;
    delete card.dataset.recheck;
    if (!open(card) || /data-status="reviewing"/.test(e.detail.serverResponse || "")) {
      e.detail.shouldSwap = false;
    }
  });
  document.body.addEventListener("live:changed", function () { recount(); pull(); });

  // The claims on the cards on screen: renewed while shown, released when the page goes.
  var renewEvery = Number(queue.dataset.claimSeconds || 75) * 1000 / 3;
  function renew() {
    var ids = shown();
    if (!ids.length) { pull(); return; } // nothing left here: see whether something was freed
    var body = new URLSearchParams();
    ids.forEach(function (id) { body.append("id", id); });
    fetch("/reports/claims", { method: "POST", body: body, credentials: "same-origin",
      headers: { "X-CSRF-Token": token } })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data && data.held) taken(ids, data.held); })
      .catch(function () {});
  }

  // A card whose claim ran out while this page slept and that another curator has open now.
  function taken(ids, held) {
    ids.forEach(function (id) {
      var card = document.getElementById("report-" + id);
      if (!card || !open(card) || held.indexOf(Number(id)) >= 0 || card.querySelector(".mod-elsewhere")) return;
      var p = document.createElement("p");
      p.className = "mod-notice mod-elsewhere";
      p.setAttribute("role", "status");
      p.textContent = "Это фото сейчас открыто у другого куратора — можно перейти к следующему (J).";
      card.prepend(p);
    });
  }
  setInterval(renew, renewEvery);
  window.addEventListener("pagehide", function () {
    // Cards with a decision on its way too: if the decision is lost with the page, they are free.
    var ids = cards().filter(function (c) { return c.dataset.status === "reviewing"; })
      .map(function (c) { return c.dataset.id; });
    if (!ids.length || !navigator.sendBeacon) return;
    var body = new FormData();
    body.append("csrf_token", token);
    ids.forEach(function (id) { body.append("id", id); });
    navigator.sendBeacon("/reports/claims/release", body);
  });
  window.addEventListener("pageshow", function (e) { if (e.persisted) renew(); });

  expire(document);
  document.addEventListener("DOMContentLoaded", function () { focusCard(current()); });
  if (document.readyState !== "loading") focusCard(current());
})();
