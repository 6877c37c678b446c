"""Provider plugins shipped with gateway-core, and the test-suite."""
