// The UI's only script (pages work without it): the project picker submits its form on change.
// Loaded from /static/ui.js because the pages' Content-Security-Policy allows no inline script.
document.addEventListener("DOMContentLoaded", () => {
  const picker = document.getElementById("project-select");
  if (picker && picker.form) {
    picker.addEventListener("change", () => picker.form.submit());
  }
});

// The range picker: typing a time chooses "custom"; choosing a preset clears the two times (the
// server refuses a preset together with start/end, so the form stays coherent without this too).
document.addEventListener("DOMContentLoaded", () => {
  for (const select of document.querySelectorAll("select[name=range]")) {
    const times = select.form ? select.form.querySelectorAll("input[name=start], input[name=end]") : [];
    for (const input of times) {
      input.addEventListener("change", () => { if (input.value) select.value = "custom"; });
    }
    select.addEventListener("change", () => {
      if (select.value !== "custom") for (const input of times) input.value = "";
    });
  }
});
