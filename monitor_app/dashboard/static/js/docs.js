// Swagger UI at /docs, set up from the JSON its page carries: a file of the app's own, as
// the Content-Security-Policy allows no inline script.
const config = JSON.parse(document.getElementById("swagger-ui-config").textContent);
window.ui = SwaggerUIBundle({ ...config, dom_id: "#swagger-ui-container" });
