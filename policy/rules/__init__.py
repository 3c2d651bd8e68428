"""The pack's policies, one module per concern; `policies.POLICIES` lists them all."""
