// The only script of the hub's pages: copy buttons. Everything else works without JavaScript.
"use strict";
(function () {
  function copy(text) {
    if (navigator.clipboard && navigator.clipboard.writeText) {
      return navigator.clipboard.writeText(text);
    }
    return Promise.reject(new Error("no clipboard"));
  }
  function flash(button, text) {
    var original = button.textContent;
    button.textContent = text;
    setTimeout(function () { button.textContent = original; }, 1500);
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy]");
    if (!button) { return; }
    copy(button.getAttribute("data-copy")).then(function () { flash(button, "Copied"); },
      function () { flash(button, "Select and copy by hand"); });
  });
  // "Copy download url": ask the hub for a fresh personal link, put it in the clipboard and show it.
  document.addEventListener("submit", function (event) {
    var form = event.target.closest("form[data-copy-link]");
    if (!form) { return; }
    event.preventDefault();
    var button = form.querySelector("button");
    fetch(form.action, {method: "POST", body: new FormData(form), credentials: "same-origin",
                        headers: {"Accept": "application/json"}})
      .then(function (response) {
        return response.json().then(function (body) {
          if (!response.ok) { throw new Error(body.message || ("HTTP " + response.status)); }
          return body;
        });
      })
      .then(function (body) {
        var shown = document.querySelector("[data-copied]");
        if (shown) {
          shown.hidden = false;
          shown.querySelector("input").value = body.url;
        }
        return copy(body.url).then(function () { flash(button, "Copied"); },
          function () { flash(button, "Copy it from the box below"); });
      })
      .catch(function (error) { flash(button, "Failed: " + error.message); });
  });
})();
