"""Tools of MCP servers that a spec grants to roles (`mcp_servers:` and `roles.X.tools: [NAME.TOOL]`),
reached through langchain-mcp-adapters (the optional extra `[mcp]`, imported only when a spec
declares a server)."""

from orchestrator.mcp_tools._hub import Launch, McpHub, McpTool, McpUnavailable, needed_servers, open_servers

__all__ = ["Launch", "McpHub", "McpTool", "McpUnavailable", "needed_servers", "open_servers"]
