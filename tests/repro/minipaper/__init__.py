"""A paper package that exists only for the kit's config tests (``paper: minipaper``)."""
