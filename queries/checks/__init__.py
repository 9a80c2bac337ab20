"""Quality checks: any row returned by a *-violation.rq query is a failure."""
