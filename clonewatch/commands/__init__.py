"""Sub-commands of the clonewatch CLI, one module each."""
