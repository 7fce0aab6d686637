/* File fields with Russian words: show the chosen file's name next to the "Выбрать файл…" button
   (the browser's own text follows the browser's language). */
(function () {
  "use strict";
  document.addEventListener("change", function (e) {
    var input = e.target;
    if (!input.matches || !input.matches("input.file-input")) return;
    var said = document.getElementById(input.id + "-chosen");
    if (said) said.textContent = input.files && input.files.length ? input.files[0].name : "Файл не выбран";
  });
})();
