// The resident's ticket page on their phone: refresh the status, place and estimated wait.
(function () {
  "use strict";
  var box = document.getElementById("ticket-state");
  if (!box || !window.fetch) { return; }
  var url = box.getAttribute("data-url");
  var template = document.getElementById("ticket-wait-template");
  function refresh() {
    fetch(url, {credentials: "same-origin"}).then(function (r) { return r.json(); }).then(function (s) {
      var status = s.status_label + (s.counter_name ? " — " + s.counter_name : "");
      var el = document.getElementById("ticket-status");
      if (el.textContent !== status) { el.textContent = status; }
      document.getElementById("ticket-ahead").textContent = s.ahead === null ? "–" : String(s.ahead);
      document.getElementById("ticket-wait").textContent = s.minutes === null ? "–" :
        template.innerHTML.trim().replace("__N__", String(s.minutes));
    }).catch(function () {});
  }
  window.setInterval(refresh, 15000);
})();
