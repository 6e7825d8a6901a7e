"""Stage 1 configuration of r1 (see lib/routes.py)."""

import os
import sys

sys.path.insert(0, os.path.join(os.environ["SYRINGE_LESSON_DIR"], "lib"))
from routes import configure

configure("r1", 1)
