"""The operator's view of consumer lag: sampling, Burrow's rules, lag in seconds, the `lag` and `ops` commands."""
