// faced admin page: the only script, loaded from the page's own origin
// (the Content-Security-Policy allows no inline script). Without it the
// page still works: forms post unconfirmed, and photos come from files.
"use strict";

// Forms marked data-confirm (delete, revoke, open a door) ask first.
document.addEventListener("submit", function (e) {
  var msg = e.target.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) {
    e.preventDefault();
  }
});

// Webcam capture (getUserMedia) into the enrol form's file field: shown
// only where the browser offers it (a secure context: https, or the
// device itself on localhost).
document.addEventListener("DOMContentLoaded", function () {
  var box = document.getElementById("webcam");
  if (!box || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || typeof DataTransfer === "undefined") {
    return;
  }
  var input = document.getElementById(box.getAttribute("data-input"));
  var start = document.getElementById("cam-start");
  var shoot = document.getElementById("cam-shoot");
  var video = document.getElementById("cam-video");
  var status = document.getElementById("cam-status");
  var stream = null;
  box.hidden = false;
  function stop() {
    if (stream) {
      stream.getTracks().forEach(function (t) { t.stop(); });
      stream = null;
    }
    video.hidden = true;
    shoot.hidden = true;
  }
  start.addEventListener("click", function () {
    navigator.mediaDevices.getUserMedia({video: {facingMode: "user"}, audio: false}).then(function (s) {
      stream = s;
      video.srcObject = s;
      video.hidden = false;
      shoot.hidden = false;
      status.textContent = "";
    }).catch(function (err) {
      status.textContent = box.getAttribute("data-error") + " " + err.name;
    });
  });
  shoot.addEventListener("click", function () {
    if (!video.videoWidth) {
      return; // no frame yet
    }
    var c = document.createElement("canvas");
    c.width = video.videoWidth;
    c.height = video.videoHeight;
    c.getContext("2d").drawImage(video, 0, 0);
    c.toBlob(function (blob) {
      var dt = new DataTransfer();
      dt.items.add(new File([blob], "camera.jpg", {type: "image/jpeg"}));
      input.files = dt.files;
      status.textContent = box.getAttribute("data-taken");
      stop();
    }, "image/jpeg", 0.92);
  });
});
