"""The simulator: scenario files, a seeded crowd model and the in-process driver."""
