"""The ``samzoo`` command line: one module per subcommand, registered in :mod:`samzoo.cli.main`."""
