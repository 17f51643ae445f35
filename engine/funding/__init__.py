"""Funding-rate arbitrage: the service (rates from every venue, ranked opportunities, HTTP API)
and the pieces the `funding_arb` client shares with it (types, the rebalancing rules)."""
