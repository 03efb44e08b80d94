// faced admin page: the only script, loaded from the page's own origin
// (the Content-Security-Policy allows no inline script). It asks for
// confirmation before the forms marked data-confirm (delete, revoke,
// open a door); without script the forms still work, unconfirmed.
"use strict";
document.addEventListener("submit", function (e) {
  var msg = e.target.getAttribute("data-confirm");
  if (msg && !window.confirm(msg)) {
    e.preventDefault();
  }
});
