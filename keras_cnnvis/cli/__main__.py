"""`python -m keras_cnnvis.cli` runs the `cnnvis` command."""

import sys

from keras_cnnvis.cli import main

sys.exit(main())
