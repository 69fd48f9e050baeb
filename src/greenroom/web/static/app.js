// Greenroom: small progressive enhancements. Every page works without this file.
(function () {
  "use strict";
  // "/" focuses the header search box (unless typing in a field already).
  document.addEventListener("keydown", function (ev) {
    if (ev.key !== "/" || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    var t = ev.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable)) return;
    var box = document.getElementById("top-q");
    if (box) { ev.preventDefault(); box.focus(); box.select(); }
  });

  document.addEventListener("DOMContentLoaded", function () {
    // Filters and graph controls apply as soon as a choice changes.
    document.querySelectorAll("form.filters, form.graph-controls").forEach(function (form) {
      form.addEventListener("change", function (ev) {
        if (ev.target && ev.target.type !== "search" && ev.target.type !== "text") form.requestSubmit();
      });
    });

    // On a phone the filter panel starts folded unless a filter is on.
    var box = document.querySelector("details.filters-box");
    if (box && window.innerWidth < 900 && !/\(\d+ active\)/.test(box.querySelector("summary").textContent)) box.open = false;

    // Interactive OpenAPI viewer when the vendored Swagger UI is installed.
    var el = document.getElementById("swagger-ui");
    if (el && window.SwaggerUIBundle) {
      window.SwaggerUIBundle({ url: el.getAttribute("data-url"), domNode: el, deepLinking: false,
        validatorUrl: null, tryItOutEnabled: false });
      el.setAttribute("data-ready", "true");
    } else if (el) {
      var raw = document.querySelector("details.raw-def");
      if (raw) raw.open = true;
    }
  });
})();
