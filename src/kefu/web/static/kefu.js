// Small behaviours of Kefu's pages. Everything works without this file; it only adds comfort.
(function () {
  "use strict";

  function typing(el) {
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }

  // "/" jumps to the page's search field (as in many web apps); Escape leaves it.
  document.addEventListener("keydown", function (e) {
    if (e.key === "/" && !e.ctrlKey && !e.metaKey && !e.altKey && !typing(document.activeElement)) {
      var field = document.querySelector("[data-search]");
      if (field) { e.preventDefault(); field.focus(); field.select && field.select(); }
    } else if (e.key === "Escape" && document.activeElement && document.activeElement.hasAttribute("data-search")) {
      document.activeElement.blur();
    }
  });

  document.addEventListener("click", function (e) {
    // Tree: the first opening loads the children through HTMX (hx-trigger="click once");
    // afterwards the button only shows or hides what is already there.
    var toggle = e.target.closest(".tree-toggle");
    if (toggle) {
      var list = document.getElementById(toggle.getAttribute("aria-controls"));
      var open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
      if (list) { list.hidden = !open; }
      return;
    }
    var close = e.target.closest(".toast-close");
    if (close) { close.parentElement.remove(); }
  });

  // Destructive forms ask first.
  document.addEventListener("submit", function (e) {
    var question = (e.submitter && e.submitter.getAttribute("data-confirm")) || e.target.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { e.preventDefault(); }
  });

  // A secret shown once is selected on focus, ready to copy.
  document.addEventListener("focusin", function (e) {
    if (e.target.classList && e.target.classList.contains("secret")) { e.target.select(); }
  });

  // Notices fade after a while; errors stay until closed.
  function fadeNotices(root) {
    (root || document).querySelectorAll(".toast-ok").forEach(function (t) {
      setTimeout(function () { t.remove(); }, 6000);
    });
  }
  document.addEventListener("DOMContentLoaded", function () { fadeNotices(); });
})();

// Tickets: live SLA timers and the ticket page's keys (the server renders both first).
(function () {
  "use strict";

  // H:MM left (negative when overdue), as kefu.web.tickets.clock_text writes it.
  function clockText(ms) {
    var minutes = Math.floor(Math.abs(ms) / 60000);
    var mm = minutes % 60;
    return (ms < 0 ? "\u2212" : "") + Math.floor(minutes / 60) + ":" + (mm < 10 ? "0" : "") + mm;
  }

  function tone(el, left) {
    if (el.hasAttribute("data-breached") || left < 0) { return "breached"; }
    var whole = Date.parse(el.getAttribute("data-due")) - Date.parse(el.getAttribute("data-start"));
    var share = whole > 0 ? left / whole : 1;
    return share < 0.25 ? "red" : share <= 0.5 ? "amber" : "green";
  }

  function tick() {
    var at = Date.now();
    document.querySelectorAll(".sla[data-due]").forEach(function (el) {
      var left = Date.parse(el.getAttribute("data-due")) - at;
      if (isNaN(left)) { return; }
      el.textContent = clockText(left);
      ["green", "amber", "red", "breached"].forEach(function (t) { el.classList.remove("sla-" + t); });
      el.classList.add("sla-" + tone(el, left));
    });
  }
  document.addEventListener("DOMContentLoaded", tick);
  document.addEventListener("htmx:afterSettle", tick);
  setInterval(tick, 15000);

  function typing(el) {
    return el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  }

  // A single key focuses the field marked data-shortcut="<key>" (r: reply, n: note).
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey || e.key.length !== 1 || typing(document.activeElement)) { return; }
    var field = document.querySelector('[data-shortcut="' + e.key.toLowerCase() + '"]');
    if (field) { e.preventDefault(); field.scrollIntoView({ block: "center" }); field.focus(); }
  });
  document.addEventListener("keydown", function (e) {
    if (e.key === "Escape" && document.activeElement && document.activeElement.hasAttribute("data-shortcut")) {
      document.activeElement.blur();
    }
  });
})();

// Console: bulk selection (select all, the count, the fields of the chosen action).
(function () {
  "use strict";

  function refresh() {
    var picks = document.querySelectorAll("[data-pick]");
    var n = 0;
    picks.forEach(function (p) { if (p.checked) { n += 1; } });
    var count = document.querySelector("[data-bulk-count] b");
    if (count) { count.textContent = String(n); }
    var all = document.querySelector("[data-pick-all]");
    if (all) { all.checked = picks.length > 0 && n === picks.length; all.indeterminate = n > 0 && n < picks.length; }
    var action = document.getElementById("f-bulk-action");
    if (action) {
      var shown = {
        "f-bulk-assignee_id": action.value === "assign" || action.value === "transfer",
        "f-bulk-state": action.value === "state",
        "f-bulk-unit_id": action.value === "transfer"
      };
      Object.keys(shown).forEach(function (id) {
        var field = document.getElementById(id);
        if (field) { field.closest(".field").hidden = !shown[id]; }
      });
    }
  }

  document.addEventListener("change", function (e) {
    if (e.target.matches && e.target.matches("[data-pick-all]")) {
      document.querySelectorAll("[data-pick]").forEach(function (p) { p.checked = e.target.checked; });
    }
    if (e.target.matches && e.target.matches("[data-pick], [data-pick-all], #f-bulk-action")) { refresh(); }
  });
  document.addEventListener("DOMContentLoaded", refresh);
  document.addEventListener("htmx:afterSettle", refresh);
})();

// Filters of several values (<details data-multi>): the summary names what is ticked, and a
// click elsewhere folds the open one.
(function () {
  "use strict";

  function summarise(details) {
    var out = details.querySelector("[data-multi-chosen]");
    if (!out) { return; }
    var names = [];
    details.querySelectorAll("input[type=checkbox]:checked").forEach(function (box) {
      names.push(box.parentElement.textContent.trim());
    });
    out.textContent = names.length ? names.join(", ") : out.getAttribute("data-blank");
  }

  document.addEventListener("change", function (e) {
    var details = e.target.closest && e.target.closest("[data-multi]");
    if (details) { summarise(details); }
  });
  document.addEventListener("click", function (e) {
    document.querySelectorAll("details[data-multi][open]").forEach(function (d) {
      if (!d.contains(e.target)) { d.open = false; }
    });
  });
  document.addEventListener("keydown", function (e) {
    if (e.key !== "Escape") { return; }
    var d = e.target.closest && e.target.closest("details[data-multi][open]");
    if (d) { d.open = false; d.querySelector("summary").focus(); }
  });
})();

// Ticket page: a standard phrase, filled in by the server, goes into the reply at the cursor.
(function () {
  "use strict";

  function insert(form) {
    var select = form.querySelector("select[name=phrase]");
    var box = document.getElementById("f-reply-body");
    if (!select || !select.value || !box) { return false; }
    fetch(form.getAttribute("data-phrase-url") + encodeURIComponent(select.value), {
      credentials: "same-origin", headers: { "Accept": "text/plain" }
    }).then(function (r) {
      if (!r.ok) { throw new Error(String(r.status)); }
      return r.text();
    }).then(function (text) {
      var start = box.selectionStart || 0, end = box.selectionEnd || 0, old = box.value;
      box.value = old.slice(0, start) + text + old.slice(end);
      box.focus();
      box.selectionStart = box.selectionEnd = start + text.length;
      select.value = "";
    }).catch(function () { form.submit(); });  // the page reloads with the reply filled in
    return true;
  }

  document.addEventListener("submit", function (e) {
    if (e.target.hasAttribute && e.target.hasAttribute("data-phrase-url") && insert(e.target)) {
      e.preventDefault();
    }
  });
  document.addEventListener("change", function (e) {
    var form = e.target.closest && e.target.closest("[data-phrase-url]");
    if (form && e.target.name === "phrase") { insert(form); }
  });
})();
