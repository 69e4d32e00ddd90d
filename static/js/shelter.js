// Shelter mode: the evacuee's card checks in through the terminal agent on this tablet
// (loopback). The agent signs the check-in with the card (PIN typed here, sent to the card only)
// and sends it to the city; when the network is down it keeps it in its queue and sends it later.
(function () {
  "use strict";
  var box = document.getElementById("shelter-card");
  if (!box) { return; }
  var agent = box.getAttribute("data-agent");
  var shelter = box.getAttribute("data-shelter");
  var state = document.getElementById("agent-state");
  var queueState = document.getElementById("queue-state");
  var result = document.getElementById("card-result");
  var pin = document.getElementById("pin");
  var tries = document.getElementById("tries");
  var lastTry = document.getElementById("last-try");
  function text(id) { return document.getElementById(id).innerHTML.trim(); }
  function json(r) { return r.json(); }
  function post(path, body) {
    return fetch(agent + path, { method: "POST", headers: { "Content-Type": "application/json" },
                                 body: JSON.stringify(body) }).then(json);
  }

  function showQueue(q) {
    if (!q || q.waiting === undefined) { return; }
    queueState.textContent = q.waiting ? text("msg-waiting") + " " + q.waiting : text("msg-all-sent");
    if (q.refused) { queueState.textContent += " " + text("msg-refused") + " " + q.refused; }
  }

  function refresh() {
    fetch(agent + "/status").then(json).then(function (s) {
      if (!s.card) { state.textContent = text("msg-no-card"); tries.textContent = ""; return; }
      state.textContent = text("msg-ready");
      if (s.tries && s.tries.auth !== undefined && s.tries.auth !== null) {
        tries.textContent = text("msg-tries") + " " + s.tries.auth;
      }
    }).catch(function () { state.textContent = text("msg-no-agent"); });
    fetch(agent + "/shelter/queue").then(json).then(showQueue).catch(function () {});
  }

  function headCount() {
    fetch(box.getAttribute("data-count-url"), { credentials: "same-origin" }).then(json).then(function (c) {
      var el = document.getElementById("head-count");
      el.textContent = c.text;
      el.setAttribute("data-count", c.count);
    }).catch(function () {});
  }

  function checkIn(method) {
    if (!/^[0-9]{4}$/.test(pin.value)) { result.textContent = text("msg-pin-format"); return; }
    result.textContent = text("msg-working");
    post("/shelter/checkin", { shelter: shelter, pin: pin.value, method: method, allow_last_try: lastTry.checked })
      .then(function (a) {
        pin.value = "";
        lastTry.checked = false;
        if (a.error) {
          var e = a.error;
          if (e.code === "wrong_pin") { result.textContent = text("msg-wrong-pin") + " " + e.tries_left; }
          else if (e.code === "last_try") { result.textContent = text("msg-last-try"); }
          else if (e.code === "pin_blocked") { result.textContent = text("msg-blocked"); }
          else { result.textContent = e.message || e.code; }
        } else if (a.status === "queued") {
          result.textContent = text("msg-queued");
          showQueue(a);
        } else {
          var head = a.status === "already_here" ? text("msg-already") :
                     (a.moved_from ? text("msg-moved") : text("msg-checked-in"));
          var line = head + " " + a.name;
          if (!a.matched) { line += " — " + text("msg-unmatched"); }
          result.textContent = line;
          headCount();
        }
        refresh();
      }).catch(function () { result.textContent = text("msg-no-agent"); });
  }

  document.getElementById("checkin-card").addEventListener("click", function () { checkIn("card"); });
  document.getElementById("checkin-text").addEventListener("click", function () { checkIn("text_ap"); });
  document.getElementById("sync").addEventListener("click", function () {
    post("/shelter/sync", {}).then(showQueue).catch(function () { result.textContent = text("msg-no-agent"); });
  });
  refresh();
  if (window.EventSource) {
    var events = new EventSource(agent + "/events");
    ["status", "card-inserted", "card-removed", "reader-lost", "reader-found"].forEach(function (n) {
      events.addEventListener(n, refresh);
    });
  }
})();
