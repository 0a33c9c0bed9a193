// What the server told the page about this deployment (rendered into dashboard.html).
export const settings = JSON.parse(document.getElementById("vigil-settings").textContent);
