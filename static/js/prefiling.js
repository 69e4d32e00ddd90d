// Pre-filing form: show a conditional section (data-show-if) only while its condition holds.
// Without JavaScript every section is shown with a hint, and the server ignores hidden ones.
(function () {
  "use strict";
  var form = document.querySelector("form.prefiling-form");
  if (!form) return;
  var sections = form.querySelectorAll("[data-show-if]");
  function current(name) {
    var input = form.elements.namedItem(name);
    if (!input) return null;
    if (input.type === "checkbox") return input.checked;
    return input.value;
  }
  function update() {
    sections.forEach(function (section) {
      var want = JSON.parse(section.getAttribute("data-equals"));
      var have = current(section.getAttribute("data-show-if"));
      var shown = typeof want === "boolean" ? Boolean(have) === want : have === want;
      section.hidden = !shown;
      var hint = section.querySelector(".if-applies");
      if (hint) hint.hidden = true;
    });
  }
  form.addEventListener("change", update);
  update();
})();
