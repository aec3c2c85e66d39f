"""`python -m demo`: run the demo (see demo/run.py)."""

from demo.run import main

if __name__ == "__main__":
    main()
