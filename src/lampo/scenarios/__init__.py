"""Scenario files shipped with lampo (TOML, one per sale event); see ``lampo.sim.scenario``."""
