"""The web console: server-rendered pages over the API's guard and the same services."""
