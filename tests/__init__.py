"""forgeml's test suites (a regular package, so no installed top-level ``tests`` package shadows it)."""
