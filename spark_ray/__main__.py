"""``python -m spark_ray`` runs the CLI."""

import sys

from spark_ray.app.cli import main

sys.exit(main())
