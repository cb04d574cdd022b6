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

  // Composer: only the fields of the kind chosen are shown (and sent); without script all are, each saying its kind.
  const kindSelect = document.getElementById("f-kind");
  if (composer && kindSelect) {
    const groups = composer.querySelectorAll("[data-kinds]");
    const showKind = function () {
      groups.forEach(function (group) {
        const belongs = group.dataset.kinds.split(" ").indexOf(kindSelect.value) !== -1;
        group.hidden = !belongs;
        if (group.tagName === "FIELDSET") { group.disabled = !belongs; }
      });
    };
    kindSelect.addEventListener("change", showKind);
    showKind();
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
          if (found.selecting) {
            bar.removeAttribute("value");  // an unknown number of recipients: the bar shows it is busy, not 0 of 0
          } else {
            bar.max = found.recipients || 1;
            bar.value = found.done;
            bar.textContent = found.done + " / " + found.recipients;
          }
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

  // Subscriber import: send the file to the streaming variant and move the progress bar with each line checked.
  const importForm = document.getElementById("import-form");
  if (importForm && window.fetch && window.TextDecoder) {
    const busy = document.getElementById("import-busy");
    const bar = document.getElementById("import-progress");
    const busyText = document.getElementById("import-busy-text");
    const result = document.getElementById("import-result");
    const show = function (event) {
      const template = busy.dataset[event.phase];
      bar.max = event.total;
      bar.value = event.done;
      busyText.textContent = template.replace("{done}", event.done).replace("{total}", event.total);
    };
    importForm.addEventListener("submit", function (submitted) {
      submitted.preventDefault();
      busy.hidden = false;
      bar.removeAttribute("value");
      busyText.textContent = busy.dataset.upload;
      result.textContent = "";
      fetch(importForm.dataset.progressUrl, { method: "POST", body: new FormData(importForm), credentials: "same-origin" })
        .then(function (answer) {
          if (!answer.ok || !answer.body) { importForm.submit(); return; }  // the plain form shows why
          const reader = answer.body.getReader();
          const decoder = new TextDecoder();
          let buffered = "";
          const read = function () {
            return reader.read().then(function (chunk) {
              buffered += decoder.decode(chunk.value || new Uint8Array(), { stream: !chunk.done });
              const lines = buffered.split("\n");
              buffered = lines.pop();
              lines.filter(Boolean).forEach(function (line) {
                const event = JSON.parse(line);
                if (event.phase === "done") {
                  busy.hidden = true;
                  result.innerHTML = event.html;  // rendered and escaped by the server's template; a live region
                } else if (event.phase === "failed") {
                  busyText.textContent = busy.dataset.failed;
                } else {
                  show(event);
                }
              });
              if (!chunk.done) { return read(); }
            });
          };
          return read();
        })
        .catch(function () { busyText.textContent = busy.dataset.failed; });
    });
  }
})();
