"""The data-management services: gateway, importer, the ``dm`` command and their shared core."""
