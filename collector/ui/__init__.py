"""The web UI: pages, their data and queries, SVG charts, templates and static files."""
