"""Start the SAM 2 studio from a checkout (and on Hugging Face Spaces, whose front matter names this file):

    python app.py [--model MODEL] [--device DEVICE] [--host HOST] [--port PORT] [--share] [--untrained] [--debug]

See `python app.py --help`; every flag also has an environment variable for hosted Spaces. Installed with pip, the
same command is `sam2-studio`.
"""

from __future__ import annotations

import sys

from app.cli import main

if __name__ == "__main__":
    sys.exit(main(prog="app.py"))
