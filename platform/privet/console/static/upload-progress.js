// privet console: the dataset upload's progress bar and its refusal text.
// No inline script (the CSP forbids it): this file listens to htmx's events.
(function () {
  "use strict";
  function bar(form) {
    var id = form.getAttribute("data-progress");
    return id ? document.getElementById(id) : null;
  }
  document.addEventListener("htmx:xhr:progress", function (evt) {
    var progress = bar(evt.target);
    if (progress && evt.detail.lengthComputable && evt.detail.total > 0) {
      var percent = Math.round((evt.detail.loaded / evt.detail.total) * 100);
      progress.value = percent;
      progress.textContent = percent + "%";
    }
  });
  document.addEventListener("htmx:beforeRequest", function (evt) {
    var progress = bar(evt.target);
    if (progress) {
      progress.value = 0;
      progress.textContent = "0%";
    }
  });
  // A refused upload (4xx) shows the rule and why instead of nothing. The event fires on
  // the swap target; the form that asked is the request's element.
  document.addEventListener("htmx:beforeSwap", function (evt) {
    var config = evt.detail.requestConfig;
    if (config && bar(config.elt) && evt.detail.xhr.status >= 400) {
      evt.detail.shouldSwap = true;
      evt.detail.isError = false;
    }
  });
})();
