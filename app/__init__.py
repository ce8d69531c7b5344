"""The Gradio studio. `app.demo.build_demo(model)` makes the Blocks; `app.settings` reads what `app.py` runs with.

Nothing heavy is imported here, so `python app.py --help` answers at once.
"""

import sam2_model  # noqa: F401  (first: keeps ultralytics from installing packages)
