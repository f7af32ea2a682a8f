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
    var question = e.target.getAttribute("data-confirm");
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
