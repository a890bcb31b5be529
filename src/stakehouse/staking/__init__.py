"""Liquid staking (ETH -> BETH, SOL -> OKSOL): rules, products, use cases and daily runs."""
