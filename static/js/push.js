// The "notify me on this device" switch. Markup it expects:
//   <div id="push-toggle" data-key-url="/api/push/key" data-subscriptions-url="/api/push/subscriptions">
//     <button type="button" id="push-on">…</button> <button type="button" id="push-off">…</button>
//     <p id="push-status" role="status"></p>
//     <template id="push-msg-on">…</template> <template id="push-msg-off">…</template>
//     <template id="push-msg-denied">…</template> <template id="push-msg-unsupported">…</template>
//     <template id="push-msg-error">…</template>
//   </div>
// The CSRF token is read from <meta name="csrf-token"> or the page's hidden csrf_token input.
(function () {
  "use strict";
  var box = document.getElementById("push-toggle");
  if (!box) { return; }
  var status = document.getElementById("push-status");
  var onButton = document.getElementById("push-on");
  var offButton = document.getElementById("push-off");
  function say(id) {
    var t = document.getElementById(id);
    if (status && t) { status.textContent = t.innerHTML.trim(); }
  }
  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta) { return meta.getAttribute("content"); }
    var input = document.querySelector('input[name="csrf_token"]');
    return input ? input.value : "";
  }
  function keyBytes(b64url) {
    var pad = "=".repeat((4 - b64url.length % 4) % 4);
    var raw = atob((b64url + pad).replace(/-/g, "+").replace(/_/g, "/"));
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { out[i] = raw.charCodeAt(i); }
    return out;
  }
  function send(method, body) {
    return fetch(box.getAttribute("data-subscriptions-url"), {
      method: method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
      body: JSON.stringify(body)
    }).then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); });
  }
  function show(subscribed) {
    if (onButton) { onButton.hidden = subscribed; }
    if (offButton) { offButton.hidden = !subscribed; }
  }
  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
    show(false);
    if (onButton) { onButton.disabled = true; }
    say("push-msg-unsupported");
    return;
  }
  var ready = navigator.serviceWorker.register("/sw.js", { scope: "/" }).then(function () {
    return navigator.serviceWorker.ready;
  });
  ready.then(function (reg) { return reg.pushManager.getSubscription(); })
    .then(function (sub) {
      show(!!sub);
      // Keep the server's copy current (the browser may have renewed the subscription).
      if (sub) { return send("POST", sub.toJSON()); }
    })
    .catch(function () { say("push-msg-error"); });

  if (onButton) {
    onButton.addEventListener("click", function () {
      Notification.requestPermission().then(function (permission) {
        if (permission !== "granted") { say("push-msg-denied"); return; }
        return fetch(box.getAttribute("data-key-url"), { credentials: "same-origin" })
          .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
          .then(function (body) {
            return ready.then(function (reg) {
              return reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(body.key) });
            });
          })
          .then(function (sub) { return send("POST", sub.toJSON()); })
          .then(function () { show(true); say("push-msg-on"); });
      }).catch(function () { say("push-msg-error"); });
    });
  }
  if (offButton) {
    offButton.addEventListener("click", function () {
      ready.then(function (reg) { return reg.pushManager.getSubscription(); })
        .then(function (sub) {
          if (!sub) { return null; }
          var endpoint = sub.endpoint;
          return sub.unsubscribe().then(function () { return send("DELETE", { endpoint: endpoint }); });
        })
        .then(function () { show(false); say("push-msg-off"); })
        .catch(function () { say("push-msg-error"); });
    });
  }
})();
