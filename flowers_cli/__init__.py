"""The `flowers` command: local mode (`up`, `demo`), data sets (`push`) and the model API from a terminal."""
