"""`python -m scorer`: the `scorer` command."""

from scorer.main import main

main()
