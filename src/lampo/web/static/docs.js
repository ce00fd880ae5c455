// The API docs page (/docs): Swagger UI over this server's OpenAPI document.
"use strict";
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    // no badge from the public validator: the page asks nothing of other servers
    validatorUrl: null,
  });
});
