"""The whole loop on loopback: Cloud Tasks emulator + task handler, for `make local` and tests."""
