"""``python -m helpers.data check NAME``: where a dataset's raw files are (see registry.main)."""
import sys

from helpers.data.registry import main

sys.exit(main())
