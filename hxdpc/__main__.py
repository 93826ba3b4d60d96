"""`python -m hxdpc ...`: the same command line as the `hxdpc` script."""
from hxdpc.cli import main

if __name__ == "__main__":
    main(prog_name="hxdpc")
