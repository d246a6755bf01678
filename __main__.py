"""``python -m ipbench ...``: the command line of the stages (``ipbench.suite.__main__``)."""
import sys

from ipbench.suite.__main__ import main

sys.exit(main())
