// Broadcasts and subscribers: a live recipient count in the composer, live sending progress, import upload feedback.
"use strict";

(function () {
  // Composer: count recipients whenever the targeting changes (the "Empfänger zählen" button does it without JS).
  const composer = document.getElementById("composer");
  const countOut = document.getElementById("recipient-count");
  if (composer && countOut) {
    let pending = null;
    const recount = function () {
      const params = new URLSearchParams();
      for (const name of ["topic_ids", "district_ids"]) {
        composer.querySelectorAll('input[name="' + name + '"]:checked').forEach(function (box) {
          params.append(name, box.value);
        });
      }
      params.set("topic_match", composer.querySelector('[name="topic_match"]').value);
      params.set("district_match", composer.querySelector('[name="district_match"]').value);
      fetch(composer.dataset.countUrl + "?" + params.toString(), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (answer) { return answer.ok ? answer.json() : null; })
        .then(function (found) { if (found) { countOut.textContent = found.text; } })
        .catch(function () { /* the button still counts */ });
    };
    composer.addEventListener("change", function (event) {
      const name = event.target.name;
      if (["topic_ids", "district_ids", "topic_match", "district_match"].includes(name)) {
        clearTimeout(pending);
        pending = setTimeout(recount, 250);
      }
    });
    recount();
  }

  // Detail page: poll the progress while the broadcast goes out; reload once it is done to show the report.
  const section = document.getElementById("progress");
  if (section && section.dataset.finished === "false") {
    const bar = document.getElementById("send-progress");
    const text = document.getElementById("progress-text");
    const status = document.getElementById("broadcast-status");
    const poll = function () {
      fetch(section.dataset.progressUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (answer) { return answer.ok ? answer.json() : null; })
        .then(function (found) {
          if (!found) { setTimeout(poll, 3000); return; }
          bar.max = found.recipients || 1;
          bar.value = found.done;
          bar.textContent = found.done + " / " + found.recipients;
          if (text.textContent !== found.text) { text.textContent = found.text; }
          if (status) { status.textContent = found.status_text; }
          if (found.finished) {
            window.location.reload();
          } else {
            // Only a broadcast that is going out changes by the second; one waiting for its time or paused does not.
            setTimeout(poll, found.status === "sending" ? 1500 : 10000);
          }
        })
        .catch(function () { setTimeout(poll, 3000); });
    };
    setTimeout(poll, 1000);
  }

  // Subscriber import: show that the upload and the line-by-line check are under way.
  const importForm = document.getElementById("import-form");
  if (importForm) {
    importForm.addEventListener("submit", function () {
      const busy = document.getElementById("import-busy");
      busy.hidden = false;
      document.getElementById("import-busy-text").textContent = busy.dataset.text;
    });
  }
})();
