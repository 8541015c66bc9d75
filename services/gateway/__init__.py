"""The REST gateway: authenticates people, turns writes into commands, reads projections."""
