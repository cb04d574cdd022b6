// Waiting rooms: asks the page's JSON twin every few seconds and reloads the page when it would show something else.
"use strict";
(function () {
  const box = document.querySelector("[data-poll]");
  if (!box) return;
  const every = 4000;
  function ask() {
    fetch(box.dataset.poll, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then((answer) => (answer.ok ? answer.json() : null))
      .then((state) => {
        const typing = document.activeElement && document.activeElement.matches("input, textarea, select");
        if (state && state.version !== box.dataset.version && !typing) {
          window.location.reload();
          return;
        }
        window.setTimeout(ask, every);
      })
      .catch(() => window.setTimeout(ask, every * 2));
  }
  window.setTimeout(ask, every);
})();
