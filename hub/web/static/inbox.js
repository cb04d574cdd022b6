// The inbox's enhancements: live updates by server-sent events (with the colleague typing, the count in the tab's
// title and notifications), bulk selection, keyboard shortcuts, canned replies and the SMS counter.
// The pages work without it: forms post normally, and canned replies can be inserted by a plain GET.
"use strict";

(function () {
  const texts = {
    de: {
      newRow: "Neu oder geändert: ", goneRow: "Nicht mehr in dieser Liste: ", newMessage: "Neue Nachricht im Vorgang.",
      selected: (n) => (n ? `${n} ausgewählt` : ""), allMatches: "alle Treffer ausgewählt",
      segments: (n, enc, chars) => `${chars} Zeichen · ${n} SMS-${n === 1 ? "Teil" : "Teile"} (${enc})`,
      noNotifications: "Dieser Browser kann keine Benachrichtigungen zeigen.",
      permission: {
        granted: "Der Browser darf Benachrichtigungen zeigen.",
        denied: "Der Browser zeigt keine Benachrichtigungen: Sie haben sie für diese Seite abgelehnt. Ändern lässt sich das in den Einstellungen des Browsers.",
        default: "Der Browser hat noch nicht gefragt, ob er Benachrichtigungen zeigen darf.",
      },
    },
    en: {
      newRow: "New or changed: ", goneRow: "No longer in this list: ", newMessage: "New message in this conversation.",
      selected: (n) => (n ? `${n} selected` : ""), allMatches: "all matches selected",
      segments: (n, enc, chars) => `${chars} characters · ${n} SMS ${n === 1 ? "part" : "parts"} (${enc})`,
      noNotifications: "This browser cannot show notifications.",
      permission: {
        granted: "The browser may show notifications.",
        denied: "The browser shows no notifications: you declined them for this site. You can change that in the browser's settings.",
        default: "The browser has not asked yet whether it may show notifications.",
      },
    },
  };
  const t = texts[document.documentElement.lang] || texts.de;
  const announce = (message) => {
    const region = document.getElementById("live-status");
    if (region) region.textContent = message;
  };

  // --- live updates ----------------------------------------------------------------------
  const live = document.getElementById("inbox-live");
  if (live && window.EventSource) {
    const source = new EventSource(live.dataset.events);
    const fragment = (html, tag) => {
      // The server renders and escapes every fragment; the template element keeps it inert while parsed.
      const holder = document.createElement("template");
      holder.innerHTML = html.trim();
      return holder.content.querySelector(tag);
    };
    source.addEventListener("row", (event) => {
      const data = JSON.parse(event.data);
      const row = fragment(data.html, "tr");
      const body = document.getElementById("conversation-rows");
      if (!row || !body) return;
      const existing = document.getElementById(row.id);
      const ticked = existing && existing.querySelector('input[name="ids"]:checked');
      if (ticked) row.querySelector('input[name="ids"]').checked = true;
      row.classList.add("fresh");
      if (existing && data.in_place) {
        // Only its status or assignment changed: it keeps its place (the list is ordered by messages).
        existing.replaceWith(row);
      } else if (existing || live.dataset.page === "1") {
        if (existing) existing.remove();
        body.prepend(row);
        const empty = document.getElementById("no-conversations");
        if (empty) empty.remove();
      } else {
        return;
      }
      announce(t.newRow + row.querySelector("th").textContent.trim());
    });
    source.addEventListener("gone", (event) => {
      // It no longer matches the list's filters (resolved, assigned elsewhere, set aside until later).
      const existing = document.getElementById("conversation-" + JSON.parse(event.data).id);
      if (!existing) return;
      const reference = existing.querySelector("th a").textContent.trim();
      existing.remove();
      announce(t.goneRow + reference);
    });
    source.addEventListener("message", (event) => {
      const data = JSON.parse(event.data);
      const item = fragment(data.html, "li");
      const list = document.getElementById("messages");
      if (!item || !list) return;
      const existing = document.getElementById(item.id);
      if (existing) {
        existing.replaceWith(item);
      } else {
        list.append(item);
        announce(t.newMessage);
      }
    });
    // The count of what waits for the clerk leads the tab's title; news becomes a notification where they allowed it.
    const title = document.title;
    source.addEventListener("waiting", (event) => {
      const { count, alerts } = JSON.parse(event.data);
      document.title = count ? `(${count}) ${title}` : title;
      if (!alerts.length) return;
      if (live.dataset.notify === "1" && window.Notification && Notification.permission === "granted") {
        alerts.forEach((alert) => {
          const shown = new Notification(alert.title, { body: alert.body, tag: alert.tag, lang: document.documentElement.lang });
          shown.addEventListener("click", () => { window.focus(); window.location = alert.url; });
        });
      }
      if (live.dataset.sound === "1" && window.AudioContext) chime();
    });
    source.addEventListener("presence", (event) => {
      const region = document.getElementById("presence");
      if (!region) return;
      const holder = document.createElement("template");
      holder.innerHTML = JSON.parse(event.data).html;
      region.replaceChildren(holder.content);
    });
  }

  // A short soft tone made in the page, so that no sound file has to be fetched.
  function chime() {
    const audio = new AudioContext();
    const tone = audio.createOscillator();
    const volume = audio.createGain();
    tone.frequency.value = 880;
    volume.gain.setValueAtTime(0.15, audio.currentTime);
    volume.gain.exponentialRampToValueAtTime(0.001, audio.currentTime + 0.4);
    tone.connect(volume).connect(audio.destination);
    tone.start();
    tone.stop(audio.currentTime + 0.4);
    tone.addEventListener("ended", () => audio.close());
  }

  // --- the browser's permission for notifications: asked for only when the clerk clicks the button.
  const ask = document.getElementById("ask-notifications");
  const permission = document.getElementById("notification-permission");
  if (ask && permission) {
    const show = () => {
      if (!window.Notification) { permission.textContent = t.noNotifications; return; }
      permission.textContent = t.permission[Notification.permission] || "";
      ask.hidden = Notification.permission !== "default";
    };
    ask.addEventListener("click", () => Notification.requestPermission().then(show));
    show();
  }

  // --- bulk selection: shift-click ticks the range since the last tick; the undo goes after a while -----------
  const bulkForm = document.getElementById("bulk");
  if (bulkForm) {
    const boxes = () => Array.from(document.querySelectorAll('#conversation-rows input[name="ids"]'));
    const pageBox = document.getElementById("bulk-page");
    const allBox = document.getElementById("bulk-all");
    const count = document.getElementById("bulk-count");
    let last = null;
    const update = () => {
      const ticked = boxes().filter((box) => box.checked).length;
      pageBox.checked = ticked > 0 && ticked === boxes().length;
      count.textContent = allBox.checked ? t.allMatches : t.selected(ticked);
    };
    document.getElementById("conversation-rows").addEventListener("click", (event) => {
      const box = event.target.closest('input[name="ids"]');
      if (!box) return;
      if (event.shiftKey && last && last !== box) {
        const all = boxes();
        const [from, to] = [all.indexOf(last), all.indexOf(box)].sort((a, b) => a - b);
        all.slice(from, to + 1).forEach((each) => { each.checked = box.checked; });
      }
      last = box;
      update();
    });
    pageBox.addEventListener("change", () => {
      boxes().forEach((box) => { box.checked = pageBox.checked; });
      update();
    });
    allBox.addEventListener("change", update);
  }
  const undo = document.querySelector("form[data-undo-seconds]");
  if (undo) window.setTimeout(() => undo.remove(), Number(undo.dataset.undoSeconds) * 1000);

  // --- canned replies ---------------------------------------------------------------------
  const canned = document.querySelector("form.canned");
  const reply = document.getElementById("reply-text");
  if (canned && reply) {
    canned.addEventListener("submit", async (event) => {
      event.preventDefault();
      const choice = canned.querySelector("select").value;
      const answer = await fetch(canned.dataset.cannedUrl + encodeURIComponent(choice), { credentials: "same-origin" });
      if (!answer.ok) { canned.submit(); return; }  // the plain GET shows the error on the page
      const { text } = await answer.json();
      const start = reply.selectionStart ?? reply.value.length;
      const end = reply.selectionEnd ?? reply.value.length;
      reply.value = reply.value.slice(0, start) + text + reply.value.slice(end);
      reply.dispatchEvent(new Event("input"));
      reply.focus();
      reply.setSelectionRange(start + text.length, start + text.length);
    });
  }

  // --- typing: while the clerk writes a reply, colleagues with the conversation open see so (at most every 3 s).
  const replyForm = document.getElementById("reply-form");
  if (replyForm && reply) {
    let told = 0;
    reply.addEventListener("input", () => {
      if (Date.now() - told < 3000) return;
      told = Date.now();
      const token = replyForm.querySelector('input[name="csrf_token"]').value;
      fetch(replyForm.dataset.typingUrl, {
        method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": token },
      }).catch(() => {});  // only a hint for colleagues: a lost one changes nothing
    });
  }

  // --- SMS counter: mirrors channels/sms_segments.py; the count stored with the sent reply is authoritative.
  const GSM7_BASIC = new Set(Array.from(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"));
  const GSM7_EXTENSION = new Set(Array.from("\f^{}\\[~]|€"));
  function countParts(costs, single, part) {
    if (costs.reduce((a, b) => a + b, 0) <= single) return 1;
    let parts = 1, used = 0;
    for (const cost of costs) {
      if (used + cost > part) { parts += 1; used = 0; }
      used += cost;
    }
    return parts;
  }
  function smsSegments(text) {
    const chars = Array.from(text);  // by code point, as Python iterates a str
    if (chars.every((c) => GSM7_BASIC.has(c) || GSM7_EXTENSION.has(c))) {
      return [countParts(chars.map((c) => (GSM7_EXTENSION.has(c) ? 2 : 1)), 160, 153), "GSM-7"];
    }
    return [countParts(chars.map((c) => (c.codePointAt(0) > 0xffff ? 2 : 1)), 70, 67), "UCS-2"];
  }
  if (reply && reply.dataset.smsCounter) {
    const counter = document.getElementById(reply.dataset.smsCounter);
    const update = () => {
      const [parts, encoding] = smsSegments(reply.value.trim());
      counter.textContent = t.segments(parts, encoding, Array.from(reply.value.trim()).length);
    };
    reply.addEventListener("input", update);
    update();
  }

  // --- keyboard shortcuts -----------------------------------------------------------------
  const rows = () => Array.from(document.querySelectorAll("#conversation-rows tr"));
  let selected = -1;
  function select(index) {
    const all = rows();
    if (!all.length) return;
    selected = Math.max(0, Math.min(index, all.length - 1));
    all.forEach((row, i) => row.classList.toggle("selected", i === selected));
    const link = all[selected].querySelector("a");
    if (link) link.focus();
  }
  const typing = (target) =>
    target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName);
  const click = (selector) => {
    const element = document.querySelector(selector);
    if (element) element.click();
    return Boolean(element);
  };
  const focus = (selector) => {
    const element = document.querySelector(selector);
    if (element) { element.focus(); element.scrollIntoView({ block: "center" }); }
    return Boolean(element);
  };
  const help = document.getElementById("shortcuts-dialog");
  document.querySelectorAll("[data-shortcut-help]").forEach((link) =>
    link.addEventListener("click", (event) => {
      if (help && help.showModal) { event.preventDefault(); help.showModal(); }
    }));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && typing(event.target)) { event.target.blur(); return; }
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event.target)) return;
    if (help && help.open) return;
    const actions = {
      j: () => select(selected + 1),
      k: () => select(selected - 1),
      Enter: () => selected >= 0 && rows()[selected] && (event.target === document.body ||
        Boolean(event.target.closest("#conversation-rows"))) && (window.location = rows()[selected].dataset.href),
      "/": () => focus("[data-shortcut-search]"),
      r: () => focus("#reply-text"),
      n: () => focus("#note-text"),
      a: () => click("#assign-me"),
      e: () => click("#resolve-button"),
      u: () => click("[data-shortcut-back]"),
      "?": () => help && help.showModal && (help.showModal(), true),
    };
    const action = actions[event.key];
    if (action && action() !== false) event.preventDefault();
  });
})();
