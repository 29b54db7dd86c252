"""The lastmile agent: settings, CLI and (later) the LangGraph application."""
