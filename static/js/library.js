// The library desk: ask the server for a challenge bound to this desk's reader, hand it to the
// terminal agent on this PC (loopback) with the PIN the resident typed, then follow the result.
// The PIN goes page -> agent -> card only.
(function () {
  "use strict";
  var box = document.getElementById("library-card");
  if (!box) { return; }
  var agent = box.getAttribute("data-agent");
  var state = document.getElementById("agent-state");
  var result = document.getElementById("card-result");
  var pin = document.getElementById("pin");
  var patron = document.getElementById("patron");
  var tries = document.getElementById("tries");
  var lastTry = document.getElementById("last-try");
  function text(id) { return document.getElementById(id).innerHTML.trim(); }

  function refresh() {
    fetch(agent + "/status").then(function (r) { return r.json(); }).then(function (s) {
      if (!s.card) { state.textContent = text("msg-no-card"); tries.textContent = ""; return; }
      state.textContent = text("msg-ready");
      if (s.tries && s.tries.auth !== undefined && s.tries.auth !== null) {
        tries.textContent = text("msg-tries") + " " + s.tries.auth;
      }
    }).catch(function () { state.textContent = text("msg-no-agent"); });
  }

  function poll(statusUrl) {
    fetch(statusUrl, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (b) {
      if (b.status === "done" && b.redirect) { window.location.assign(b.redirect); }
      else if (b.status === "failed") { result.textContent = b.error.message; }
      else { window.setTimeout(function () { poll(statusUrl); }, 500); }
    });
  }

  function run(purpose) {
    result.textContent = "";
    if (!/^[0-9]{4}$/.test(pin.value)) { result.textContent = text("msg-pin-format"); return; }
    result.textContent = text("msg-working");
    fetch(box.getAttribute("data-challenge-url"), {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": box.getAttribute("data-csrf") },
      body: JSON.stringify({ purpose: purpose, patron_number: purpose === "library_link" ? patron.value : "" })
    }).then(function (r) { return r.json(); }).then(function (ch) {
      if (ch.error) { result.textContent = ch.error.message; return; }
      return fetch(agent + "/login", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ purpose: purpose, challenge: ch.id, message: ch.message, pin: pin.value,
                               allow_last_try: lastTry.checked })
      }).then(function (r) { return r.json(); }).then(function (a) {
        pin.value = "";
        if (!a.error) { poll(ch.status_url); return; }
        var e = a.error;
        if (e.code === "wrong_pin") { result.textContent = text("msg-wrong-pin") + " " + e.tries_left; }
        else if (e.code === "last_try") { result.textContent = text("msg-last-try"); }
        else if (e.code === "pin_blocked") { result.textContent = text("msg-blocked"); }
        else { result.textContent = e.message || e.code; }
        refresh();
      });
    }).catch(function () { result.textContent = text("msg-no-agent"); });
  }

  document.getElementById("lookup").addEventListener("click", function () { run("library_lookup"); });
  document.getElementById("link").addEventListener("click", function () { run("library_link"); });
  refresh();
  if (window.EventSource) {
    var events = new EventSource(agent + "/events");
    ["status", "card-inserted", "card-removed", "reader-lost", "reader-found"].forEach(function (n) {
      events.addEventListener(n, refresh);
    });
  }
})();
