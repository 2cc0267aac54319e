"""Policy (limits with sources) and the rule checks that turn kernel results into decisions."""
