"""Stage 0 configuration of r3 (see lib/frr.py)."""

import os
import sys

sys.path.insert(0, os.path.join(os.environ["SYRINGE_LESSON_DIR"], "lib"))
from frr import configure

configure("r3", 0)
