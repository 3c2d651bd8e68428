"""Components of the bootstrap program, one file per logical entity."""
