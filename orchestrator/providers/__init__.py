"""Built-in provider kinds, registered through the `orchestrator.providers` entry points."""
