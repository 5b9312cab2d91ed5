"""A job module that fails to import: the demo page must show a clear error state."""

raise RuntimeError("this job module is broken on purpose (playwright_tests)")
