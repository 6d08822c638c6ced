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

// A logged value's step slider: dragging it shows the step's number, letting go opens that step (the
// page's own URL for it, from data-href with STEP in place of the step). The first/previous/next/last
// links beside it do the same without script.
document.addEventListener("DOMContentLoaded", () => {
  for (const slider of document.querySelectorAll("input.step-slider")) {
    const steps = JSON.parse(slider.dataset.steps || "[]");
    const shown = slider.parentElement.querySelector(".step-shown");
    slider.addEventListener("input", () => { if (shown) shown.textContent = String(steps[slider.value]); });
    slider.addEventListener("change", () => {
      const step = steps[slider.value];
      if (step !== undefined) window.location.assign(slider.dataset.href.replace("STEP", encodeURIComponent(step)));
    });
  }
});
