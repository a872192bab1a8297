"""Built-in provider kinds (embedded, Ollama, OpenAI-compatible), registered through the
`orchestrator.providers` entry points like any plugin; their SDKs load only when a model is built."""
