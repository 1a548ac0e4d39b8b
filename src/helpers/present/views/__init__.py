"""views — one module per study kind whose section is its own (named by the kind's registry entry
in helpers.config.kinds as ``view``); the notebook cells of that kind call it directly."""
