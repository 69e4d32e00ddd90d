// Express counter: read the reservation number's QR code with the camera (BarcodeDetector and
// getUserMedia), put it in the number field and send the form. Without a camera or without
// BarcodeDetector the panel stays hidden and the clerk types the number: the page works as is.
(function () {
  "use strict";
  var box = document.getElementById("qr-scan");
  if (!box) { return; }
  var input = document.getElementById(box.getAttribute("data-input"));
  var form = document.getElementById(box.getAttribute("data-form"));
  var start = document.getElementById("qr-start");
  var stop = document.getElementById("qr-stop");
  var video = document.getElementById("qr-video");
  var state = document.getElementById("qr-state");
  var NUMBER = /(\d{4})[-\s]?(\d{4})[-\s]?([A-Za-z])/;
  var stream = null;
  var timer = null;
  var detector = null;

  function text(id) { var t = document.getElementById(id); return t ? t.innerHTML.trim() : ""; }

  if (!input || !form || !("BarcodeDetector" in window) || !navigator.mediaDevices ||
      !navigator.mediaDevices.getUserMedia) {
    return;
  }

  function halt() {
    if (timer) { window.clearTimeout(timer); timer = null; }
    if (stream) { stream.getTracks().forEach(function (t) { t.stop(); }); stream = null; }
    video.hidden = true;
    stop.hidden = true;
    start.hidden = false;
  }

  function look() {
    if (!stream) { return; }
    detector.detect(video).then(function (codes) {
      for (var i = 0; i < codes.length; i++) {
        var m = NUMBER.exec(codes[i].rawValue || "");
        if (m) {
          halt();
          input.value = m[1] + "-" + m[2] + "-" + m[3].toUpperCase();
          form.submit();
          return;
        }
      }
      if (codes.length) { state.textContent = text("qr-msg-not-number"); }
      timer = window.setTimeout(look, 250);
    }).catch(function () { timer = window.setTimeout(look, 500); });
  }

  function begin() {
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false })
      .then(function (s) {
        stream = s;
        video.srcObject = s;
        video.hidden = false;
        start.hidden = true;
        stop.hidden = false;
        state.textContent = text("qr-msg-looking");
        return video.play();
      })
      .then(look)
      .catch(function () { halt(); state.textContent = text("qr-msg-denied"); input.focus(); });
  }

  var formats = window.BarcodeDetector.getSupportedFormats
    ? window.BarcodeDetector.getSupportedFormats() : Promise.resolve(["qr_code"]);
  formats.then(function (list) {
    if (list.indexOf("qr_code") < 0) { return; }
    detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    box.hidden = false;
    start.addEventListener("click", begin);
    stop.addEventListener("click", halt);
    window.addEventListener("pagehide", halt);
  }).catch(function () { /* no detector: typing only */ });
})();
