"""`python -m langchain_dynaspark`: the command line, `langchain_dynaspark.cli`."""

import sys

from langchain_dynaspark.cli import main

if __name__ == "__main__":
    sys.exit(main())
