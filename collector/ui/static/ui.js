// The UI's only script (pages work without it): the project picker submits its form on change.
// Loaded from /static/ui.js because the pages' Content-Security-Policy allows no inline script.
document.addEventListener("DOMContentLoaded", () => {
  const picker = document.getElementById("project-select");
  if (picker && picker.form) {
    picker.addEventListener("change", () => picker.form.submit());
  }
});
