"""The fixture paper of the kit's tests (``paper: minipaper``): see :mod:`minipaper.paper`."""
