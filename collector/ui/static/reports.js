// The report editor, in the page (it works without this script: each button then submits the form and
// the server answers the changed draft). Adds a block from its <template> with a fresh key, moves a
// block up or down, removes one, and asks before deleting the report. Nothing is saved until "Save":
// the form carries every block, in the order of its fieldsets (collector/ui/reports_form.py).
(() => {
  "use strict";

  function freshKey() {
    const bytes = new Uint8Array(4);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function addBlock(kind) {
    const template = document.getElementById(`template-${kind}`);
    const blocks = document.getElementById("blocks");
    if (!template || !blocks) return;
    const key = freshKey();
    const fieldset = template.content.firstElementChild.cloneNode(true);
    for (const element of [fieldset, ...fieldset.querySelectorAll("*")]) {
      for (const name of ["name", "value", "id", "data-key"]) {
        const text = element.getAttribute(name);
        if (text && text.includes("__key__")) element.setAttribute(name, text.split("__key__").join(key));
      }
    }
    blocks.appendChild(fieldset);
    const first = fieldset.querySelector("textarea, input[type=text]");
    if (first) first.focus();
    changed();
  }

  function changed() {
    document.getElementById("report-editor").dataset.changed = "1";
  }

  function onClick(event) {
    const button = event.target.closest("button");
    if (!button || !button.form || button.form.id !== "report-editor") return;
    const action = button.value || "";
    if (button.dataset.add) {
      event.preventDefault();
      addBlock(button.dataset.add);
      return;
    }
    const fieldset = button.closest("fieldset.block-editor");
    if (!fieldset) return;
    if (action.startsWith("remove:")) {
      event.preventDefault();
      fieldset.remove();
      changed();
    } else if (action.startsWith("up:")) {
      event.preventDefault();
      const before = fieldset.previousElementSibling;
      if (before) fieldset.parentNode.insertBefore(fieldset, before);
      changed();
    } else if (action.startsWith("down:")) {
      event.preventDefault();
      const after = fieldset.nextElementSibling;
      if (after) fieldset.parentNode.insertBefore(after, fieldset);
      changed();
    }
  }

  document.addEventListener("DOMContentLoaded", () => {
    const form = document.getElementById("report-editor");
    if (!form) return;
    form.addEventListener("click", onClick);
    form.addEventListener("input", changed);
    const remove = document.getElementById("delete");
    if (remove) {
      remove.form.addEventListener("submit", (event) => {
        if (!window.confirm(remove.dataset.confirm)) event.preventDefault();
      });
    }
    form.dataset.ready = "1"; // the browser tests wait for this
  });
})();
