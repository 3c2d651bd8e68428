"""Which inputs force a replacement: the generated table (table.json) and its generator."""
