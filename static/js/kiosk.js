// The kiosk page (Chromium in kiosk mode, beside the terminal agent on 127.0.0.1).
//
// Start screen: follow the reader through the agent's event stream, show the on-screen PIN
// keypad with the tries left (and a warning before the last try), send the PIN to the agent —
// page -> agent (loopback) -> card, nowhere else — and hand the ticket the agent got back to the
// server, which opens the visit. During a visit: taking the card off the reader, or nothing
// touched for a while, ends the visit on the server and clears the screen at once.
(function () {
  "use strict";
  var body = document.getElementById("kiosk");
  if (!body) { return; }
  var agent = body.getAttribute("data-agent");
  var csrf = body.getAttribute("data-csrf");
  var endUrl = body.getAttribute("data-end-url");
  var inVisit = body.getAttribute("data-visit") === "1";
  var ending = false;

  // A page shown again from the back/forward cache is loaded afresh (the server decides).
  window.addEventListener("pageshow", function (e) { if (e.persisted) { window.location.reload(); } });

  function endVisit(reason) {
    if (ending) { return; }
    ending = true;
    var main = document.getElementById("main");
    if (main) { main.innerHTML = ""; }  // nothing of the resident stays on screen
    fetch(endUrl, {
      method: "POST", credentials: "same-origin", keepalive: true,
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify({ reason: reason })
    }).then(function (r) { return r.json(); }).then(function (b) {
      window.location.replace(b.redirect);
    }).catch(function () { window.location.replace(endUrl.replace(/session\/end$/, "") + "?ended=" + reason); });
  }

  // -- the reader, through the agent ---------------------------------------------------------
  var onReader = function () {};
  var events = null;
  function listen() {
    if (!window.EventSource) { return; }
    events = new EventSource(agent + "/events");
    events.addEventListener("status", function (e) { onReader("status", JSON.parse(e.data)); });
    ["card-inserted", "card-removed", "reader-lost", "reader-found"].forEach(function (name) {
      events.addEventListener(name, function () { onReader(name, null); });
    });
    events.onerror = function () { onReader("agent-lost", null); };
  }

  // -- during a visit: card removal and idle time end it ---------------------------------------
  if (inVisit) {
    onReader = function (kind, status) {
      if (kind === "card-removed" || kind === "reader-lost" || (kind === "status" && status && !status.card)) {
        endVisit("card_removed");
      }
    };
    var idle = parseInt(body.getAttribute("data-idle"), 10) * 1000;
    var warnBefore = parseInt(body.getAttribute("data-idle-warning"), 10) * 1000;
    var dialog = document.getElementById("idle-warning");
    var warnTimer = null, endTimer = null;
    var touched = function () {
      window.clearTimeout(warnTimer); window.clearTimeout(endTimer);
      if (dialog) { dialog.hidden = true; }
      warnTimer = window.setTimeout(function () {
        if (dialog) { dialog.hidden = false; document.getElementById("idle-continue").focus(); }
      }, Math.max(idle - warnBefore, 1000));
      endTimer = window.setTimeout(function () { endVisit("idle"); }, idle);
    };
    ["pointerdown", "keydown", "touchstart"].forEach(function (n) { document.addEventListener(n, touched, true); });
    var cont = document.getElementById("idle-continue");
    if (cont) { cont.addEventListener("click", touched); }
    touched();
    listen();
    copiesStepper();
    paymentPage();
    return;
  }

  // -- certificate options: the number of copies, with big − / ＋ buttons ----------------------
  function copiesStepper() {
    var input = document.getElementById("copies");
    if (!input) { return; }
    var shown = document.getElementById("copies-shown");
    var max = parseInt(input.getAttribute("data-max"), 10);
    function set(n) {
      n = Math.max(1, Math.min(max, n));
      input.value = String(n);
      shown.textContent = String(n);
    }
    document.getElementById("copies-less").addEventListener("click", function () { set(parseInt(input.value, 10) - 1); });
    document.getElementById("copies-more").addEventListener("click", function () { set(parseInt(input.value, 10) + 1); });
  }

  // -- payment: wait for the provider to say "paid", then issue ("print") -----------------------
  function paymentPage() {
    var box = document.getElementById("kiosk-payment");
    if (!box) { return; }
    var state = document.getElementById("pay-state");
    var statusUrl = box.getAttribute("data-status-url");
    var simulator = box.getAttribute("data-simulator-url");
    var done = false;
    function msg(id) { return document.getElementById(id).innerHTML.trim(); }
    function poll() {
      if (done) { return; }
      fetch(statusUrl, { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (b) {
        if (b.status === "paid") {
          done = true;
          state.textContent = msg("msg-paid");
          document.getElementById("issue-form").submit();
          return;
        }
        if (b.status === "failed") { state.textContent = msg("msg-failed"); }
        if (b.status === "cancelled" || b.status === "none") { window.location.replace(box.getAttribute("data-status-url").replace(/\/order\/payment\/status$/, "")); return; }
        window.setTimeout(poll, 700);
      }).catch(function () { window.setTimeout(poll, 1500); });
    }
    var button = document.getElementById("simulate-pay");
    if (button && simulator) {
      button.addEventListener("click", function () {
        button.disabled = true;
        fetch(simulator, {
          method: "POST", credentials: "same-origin",
          headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
          body: "{}"
        }).then(function () { button.disabled = false; }).catch(function () { button.disabled = false; });
      });
    }
    poll();
  }

  // -- the start screen -------------------------------------------------------------------------
  var start = document.getElementById("kiosk-start");
  if (!start) { return; }
  var texts = JSON.parse(document.getElementById("kiosk-messages").textContent);
  var screens = ["wait", "insert", "pin", "last", "progress", "error"];
  var pin = "";
  var allowLast = false;
  var busy = false;
  var display = document.querySelectorAll("#pin-display span");
  var okButton = document.getElementById("pin-ok");

  function show(name) {
    screens.forEach(function (s) { document.getElementById("screen-" + s).hidden = (s !== name); });
    var h = document.querySelector("#screen-" + name + " h1");
    if (h) { h.setAttribute("tabindex", "-1"); h.focus(); }
  }
  function clearPin() {
    pin = "";
    drawPin();
  }
  function drawPin() {
    for (var i = 0; i < display.length; i++) { display[i].className = i < pin.length ? "filled" : ""; }
    document.getElementById("pin-count").textContent = texts.count.replace("{n}", pin.length);
    okButton.disabled = pin.length !== 4;
  }
  function failure(code) {
    var key = texts.failures[code] ? code : (texts.aliases[code] || "card_error");
    return texts.failures[key] || texts.failures.card_error;
  }
  function fail(code) {
    clearPin();
    var f = failure(code);
    document.getElementById("error-title").textContent = f.title;
    document.getElementById("error-next").textContent = f.next;
    show("error");
  }
  function askPin(tries, message) {
    clearPin();
    document.getElementById("pin-message").textContent = message || "";
    document.getElementById("pin-tries").textContent =
      (tries === null || tries === undefined) ? "" : texts.tries.replace("{n}", tries);
    if (tries === 0) { fail("pin_blocked"); return; }
    if (tries === 1 && !allowLast) { show("last"); return; }
    show("pin");
  }

  function status() {
    return fetch(agent + "/status").then(function (r) { return r.json(); });
  }
  function refresh() {
    if (busy) { return; }
    status().then(function (s) {
      if (busy) { return; }
      if (!s.reader) { fail("no_reader"); return; }
      if (!s.card) { allowLast = false; clearPin(); show("insert"); return; }
      askPin(s.tries ? s.tries.auth : null);
    }).catch(function () { fail("no_agent"); });
  }

  onReader = function (kind) {
    if (kind === "card-removed") {
      allowLast = false; clearPin();
      if (!busy) { show("insert"); }
      return;
    }
    if (kind === "agent-lost") { if (!busy) { fail("no_agent"); } return; }
    refresh();
  };

  function submit() {
    if (pin.length !== 4 || busy) { return; }
    busy = true;
    var sent = pin;
    clearPin();
    show("progress");
    fetch(agent + "/login", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ purpose: "kiosk_login", pin: sent, allow_last_try: allowLast })
    }).then(function (r) { return r.json(); }).then(function (a) {
      sent = "";
      if (a.error) { busy = false; return answer(a.error); }
      if (!a.ticket) { busy = false; fail("card_error"); return; }
      return fetch(start.getAttribute("data-session-url"), {
        method: "POST", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
        body: JSON.stringify({ ticket: a.ticket })
      }).then(function (r) { return r.json(); }).then(function (b) {
        if (b.redirect) { window.location.replace(b.redirect); return; }
        busy = false; fail(b.error ? b.error.code : "card_error");
      });
    }).catch(function () { busy = false; sent = ""; fail("no_agent"); });
  }

  function answer(e) {
    allowLast = false;
    if (e.code === "wrong_pin") {
      askPin(e.tries_left, failure("wrong_pin").title);
    } else if (e.code === "last_try") {
      askPin(1);
    } else {
      fail(e.code);
    }
  }

  Array.prototype.forEach.call(document.querySelectorAll(".keypad [data-digit]"), function (key) {
    key.addEventListener("click", function () {
      if (pin.length < 4) { pin += key.getAttribute("data-digit"); drawPin(); }
    });
  });
  document.getElementById("pin-back").addEventListener("click", function () { pin = pin.slice(0, -1); drawPin(); });
  document.getElementById("pin-clear").addEventListener("click", clearPin);
  okButton.addEventListener("click", submit);
  document.getElementById("last-yes").addEventListener("click", function () { allowLast = true; show("pin"); });
  document.getElementById("last-no").addEventListener("click", function () {
    fail("stopped_last_try");
  });
  document.getElementById("error-again").addEventListener("click", function () { allowLast = false; refresh(); });
  // a hardware keyboard (accessibility, tests) types into the same keypad
  document.addEventListener("keydown", function (e) {
    if (document.getElementById("screen-pin").hidden) { return; }
    if (/^[0-9]$/.test(e.key) && pin.length < 4) { pin += e.key; drawPin(); }
    else if (e.key === "Backspace") { pin = pin.slice(0, -1); drawPin(); }
    else if (e.key === "Enter") { submit(); }
  });
  listen();
  if (!window.EventSource) { refresh(); }
})();
