/* The application queue: "Выбрать все" ticks every pending application for the bulk approval (and
   clears them again); the line beside the button says how many are ticked. Without the script
   each application is ticked by hand. */
(function () {
  "use strict";
  var all = document.querySelector("[data-pick-all]");
  if (!all) return;
  var said = document.getElementById("picked");
  function boxes() { return Array.prototype.slice.call(document.querySelectorAll('input[name="ids"][form="bulk"]')); }
  function update() {
    var list = boxes();
    var ticked = list.filter(function (b) { return b.checked; }).length;
    all.checked = list.length > 0 && ticked === list.length;
    all.indeterminate = ticked > 0 && ticked < list.length;
    if (said) said.textContent = ticked ? "Отмечено: " + ticked + " из " + list.length : "";
  }
  all.addEventListener("change", function () {
    boxes().forEach(function (b) { b.checked = all.checked; });
    update();
  });
  document.addEventListener("change", function (e) {
    if (e.target.matches && e.target.matches('input[name="ids"]')) update();
  });
  document.body.addEventListener("htmx:afterSwap", update); // a decided row leaves the selection
  update();
})();
