// Loaded (by myst-nb, see nb_ipywidgets_js in _config.yml) after require.js and before the vendored widget
// manager, on pages that hold widgets. The manager's bundles locate their Font Awesome fonts beside the URL
// RequireJS gives their module names; by default that is a folder "@jupyter-widgets/..." next to the page,
// which does not exist. Map those names to the vendored folder, resolved from this script's own URL, so that
// fonts load on every page at any depth, offline.
(function () {
  var here = document.currentScript && document.currentScript.src;
  if (!here || typeof window.requirejs === "undefined") return;
  var vendor = new URL("vendor/html-manager", here).href;  // .../_static/vendor/html-manager
  window.requirejs.config({
    paths: {
      "@jupyter-widgets/html-manager/dist": vendor,
      "@jupyter-widgets": vendor
    }
  });
})();
