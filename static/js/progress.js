// The progress WebApp: one POST with Telegram's signed initData (never in the URL); the server
// answers with the rendered fragment. Without initData the page's own text says what to do.
(function () {
  "use strict";
  var tg = window.Telegram && window.Telegram.WebApp;
  var box = document.getElementById("progress");
  if (!box) return;

  // Telegram also passes initData and the theme in the URL fragment (never sent to a server):
  // read them there when its script could not load.
  function fromHash(name) {
    try { return new URLSearchParams(location.hash.slice(1)).get(name) || ""; } catch (e) { return ""; }
  }
  var initData = (tg && tg.initData) || fromHash("tgWebAppData");
  if (tg) {
    tg.ready();
    if (tg.expand) tg.expand();
  } else {
    try {
      var theme = JSON.parse(fromHash("tgWebAppThemeParams") || "{}");
      Object.keys(theme).forEach(function (key) {
        document.documentElement.style.setProperty("--tg-theme-" + key.replace(/_/g, "-"), theme[key]);
      });
    } catch (e) { /* the fallback colours stay */ }
  }
  if (!initData) return;

  box.setAttribute("aria-busy", "true");
  box.innerHTML = '<p class="pg-note">Загружаем…</p>';
  var body = new URLSearchParams();
  body.append("init_data", initData);
  fetch("/telegram/progress", { method: "POST", body: body, credentials: "omit", cache: "no-store" })
    .then(function (response) { return response.text(); })
    .then(function (html) { box.innerHTML = html; })
    .catch(function () {
      box.innerHTML = '<p class="pg-note pg-note--error" role="alert">Нет связи. Проверьте интернет и откройте страницу ещё раз.</p>';
    })
    .then(function () { box.removeAttribute("aria-busy"); });
})();
