"""The domain: pure rules of money, catalog, markets, sale events, holds and orders.

Standard library only; no I/O. Everything outside depends on this, never the reverse.
"""
