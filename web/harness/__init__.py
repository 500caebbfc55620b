"""Real processes for the tests, the host tools and the benchmark: MariaDB, Hypercorn, nginx."""
