"""The importer service: runs import jobs pulled from the commands stream."""
