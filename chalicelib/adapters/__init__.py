"""The ports' two adapters (chalicelib/ports.py): aws/ for the cloud, local/ for `flowers up`."""
