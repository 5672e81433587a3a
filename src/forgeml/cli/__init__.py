"""The ``forgeml`` command line: thin commands over the same services the SDK uses."""
