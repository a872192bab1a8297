"""Serving the orchestrator to other tools: an MCP server (`orchestrator mcp`) and graph
factories for LangGraph Server (`langgraph dev`). Above the runtime, below the CLI; the MCP SDK
and LangGraph Server are optional extras imported only here."""
