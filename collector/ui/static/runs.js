// The runs table's live refresh (the table works without it): while any shown run is running, poll the
// table's JSON twin (data-twin, the same view) every few seconds and rewrite the shown runs' cells as
// text; stop once none of them is running. Served from /static/runs.js: the CSP allows no inline script.
// A group's heading row folds its runs away and back.
(() => {
  const INTERVAL_MS = 2000;
  const table = document.getElementById("runs");
  if (!table || !table.dataset.twin) return;
  for (const heading of table.querySelectorAll("tr.group-row")) {
    heading.addEventListener("click", () => {
      const folded = heading.classList.toggle("folded");
      for (let row = heading.nextElementSibling; row && !row.classList.contains("group-row");
        row = row.nextElementSibling) {
        row.hidden = folded;
      }
    });
  }
  const rows = () => Array.from(table.querySelectorAll("tr.run-row"));
  const running = () => rows().some((row) => row.dataset.state === "running");

  function apply(answer) {
    const byId = new Map(answer.runs.map((run) => [run.run_id, run]));
    for (const row of rows()) {
      const run = byId.get(row.dataset.run);
      if (!run) continue;
      row.dataset.state = run.state;
      for (const cell of row.querySelectorAll("td[data-col]")) {
        const column = cell.dataset.col;
        if (column === "name" || !(column in run.cells)) continue;
        if (cell.textContent !== run.cells[column]) {
          cell.textContent = run.cells[column];
          cell.classList.add("updated");
        }
        if (column === "state") cell.className = "state-" + run.state;
      }
    }
    table.dataset.refreshed = String((Number(table.dataset.refreshed) || 0) + 1);
  }

  async function poll() {
    try {
      const response = await fetch(table.dataset.twin, { headers: { Accept: "application/json" } });
      if (response.ok) apply(await response.json());
    } catch (error) {
      // the collector restarting: try again at the next tick
    }
    schedule();
  }

  function schedule() {
    const live = running();
    table.dataset.polling = live ? "on" : "off";
    if (live) setTimeout(poll, INTERVAL_MS);
  }

  schedule();
})();
