/* The API explorer's start (GET /docs/init.js; shared/bs-api-explorer.c):
 * Swagger UI on this service's /openapi.json, with "Try it out" sent to the
 * server that served the page. A file of its own, not inline, so that the
 * page's Content-Security-Policy needs no 'unsafe-inline' for scripts. */
(function () {
  "use strict";

  var root = document.getElementById("swagger-ui");
  /* /docs → "/"; behind a proxy that adds a prefix, that prefix */
  var base = new URL(".", document.baseURI);
  var specUrl = new URL("openapi.json", base);

  function fail(message) {
    root.textContent = "The API explorer cannot start: " + message;
    root.setAttribute("role", "alert");
  }

  if (typeof window.SwaggerUIBundle !== "function") {
    fail("Swagger UI did not load (swagger-ui-bundle.js).");
    return;
  }
  fetch(specUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
    .then(function (response) {
      if (!response.ok) {
        throw new Error(specUrl + " answered HTTP " + response.status);
      }
      return response.json();
    })
    .then(function (spec) {
      /* the document names a development host: try it out here instead */
      spec.servers = [{ url: base.href.replace(/\/$/, ""), description: "This server" }];
      window.ui = window.SwaggerUIBundle({
        spec: spec,
        domNode: root,
        deepLinking: true,
        layout: "BaseLayout",
        presets: [window.SwaggerUIBundle.presets.apis],
        validatorUrl: null,
        displayRequestDuration: true,
      });
    })
    .catch(function (error) {
      fail(error.message);
    });
})();
