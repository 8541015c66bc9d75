"""``dm-run`` (``make run``): the whole service on one machine, supervised in one terminal."""
