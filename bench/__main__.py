"""`python -m bench`: the same CLI as the `bench` command."""

from bench.cli import main

main()
