// The registration WebApp: prefill and submit with Telegram's signed initData (never in the URL).
(function () {
  "use strict";
  var tg = window.Telegram && window.Telegram.WebApp;
  var form = document.getElementById("reg-form");
  if (!form) return;
  var initData = (tg && tg.initData) || "";
  document.getElementById("init_data").value = initData;
  var box = document.getElementById("reg-message");
  if (tg) { tg.ready(); tg.expand(); }

  function showErrors(errors) {
    form.querySelectorAll("[data-error-for]").forEach(function (p) {
      var name = p.getAttribute("data-error-for");
      var text = (errors && errors[name]) || "";
      p.textContent = text;
      p.parentElement.classList.toggle("reg-field--error", !!text);
      // A radio group has several inputs with the name: mark them all.
      form.querySelectorAll('[name="' + name + '"]').forEach(function (input) {
        if (text) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
      });
    });
    var first = form.querySelector('[aria-invalid="true"]');
    if (first) first.focus();
  }

  function post(fields) {
    var body = new FormData();
    Object.keys(fields).forEach(function (k) { body.append(k, fields[k]); });
    body.append("init_data", initData);
    return fetch("/telegram/registration", {
      method: "POST", body: body, headers: { "Accept": "application/json" }, credentials: "omit"
    }).then(function (r) { return r.json(); });
  }

  if (initData) {
    post({ action: "prefill" }).then(function (data) {
      if (!data.ok || !data.values) return;
      Object.keys(data.values).forEach(function (k) {
        var input = form.querySelector('[name="' + k + '"]');
        if (input && !input.value) input.value = data.values[k];
      });
    }).catch(function () {});
  }

  // "текст согласия" in the checkbox's label opens the text above instead of ticking the box.
  var consentLink = form.querySelector("[data-open-consent]");
  if (consentLink) consentLink.addEventListener("click", function (event) {
    event.preventDefault();
    var text = document.getElementById("consent-text");
    text.open = true;
    text.querySelector("summary").focus();
    text.scrollIntoView({ block: "start" });
  });

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var button = form.querySelector("button[type=submit]");
    button.disabled = true;
    var fields = { action: "submit" };
    ["name", "surname", "date_of_birth", "city", "phone"].forEach(function (k) {
      fields[k] = form.elements[k].value;
    });
    var giver = form.querySelector('input[name="consent_by"]:checked');
    fields.consent_by = giver ? giver.value : "";
    fields.consent = form.elements.consent.checked ? "on" : "";
    fields.consent_version = form.elements.consent_version.value;
    post(fields).then(function (data) {
      showErrors(data.errors || {});
      box.textContent = data.message || "";
      box.classList.toggle("reg-message--error", !data.ok);
      if (data.ok) {
        form.hidden = true;
        box.setAttribute("role", "status");
        if (tg) setTimeout(function () { tg.close(); }, 1500);
      }
    }).catch(function () {
      box.textContent = "Нет связи. Проверьте интернет и попробуйте ещё раз.";
      box.classList.add("reg-message--error");
    }).finally(function () { button.disabled = false; });
  });
})();
