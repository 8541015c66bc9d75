"""The ``dm`` command line: a client of the gateway, plus a few admin commands on the database."""
