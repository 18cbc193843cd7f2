"""The `mtwin` command line. Each subcommand lives in its own module with a `register(subparsers)`."""
