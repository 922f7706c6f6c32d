"""The leader's area: league tables, drill-down and the charts a leader reads (server-rendered SVG)."""
