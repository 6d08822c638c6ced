"""The collector's HTTP app: the edge guard and one module of routes per area."""
