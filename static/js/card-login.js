// Log in with the card on a PC: poll the challenge this page was given until the card helper
// answers it, then follow the server's redirect. No PIN ever passes through this page.
(function () {
  "use strict";
  var box = document.getElementById("card-login");
  if (!box) { return; }
  var status = document.getElementById("card-login-status");
  var url = box.getAttribute("data-status-url");
  var deadline = Date.now() + (parseInt(box.getAttribute("data-seconds"), 10) + 5) * 1000;
  function text(id) { return document.getElementById(id).innerHTML.trim(); }
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (body) {
        if (body.status === "done" && body.redirect) {
          status.textContent = text("msg-done");
          window.location.assign(body.redirect);
        } else if (body.status === "failed") {
          status.textContent = body.error ? body.error.message : text("msg-expired");
        } else if (Date.now() > deadline) {
          status.textContent = text("msg-expired");
        } else {
          window.setTimeout(poll, 1500);
        }
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 1500);
})();
