"""The sweep controller: configs, search (grid, random, bayes) and hyperband stopping."""
