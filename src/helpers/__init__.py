"""studybook helpers: everything the CLI and the study notebooks call."""
