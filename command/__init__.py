"""The command service: incidents, contingency plans, reserve, rosters and dispatch."""
