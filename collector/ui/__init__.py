"""The web UI: pages, their data and queries, charts (uPlot specs and SVG), templates and static files."""
