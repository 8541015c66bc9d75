"""The exporter service: writes a model's rows to CSV, JSON, JSON Lines or XLSX files."""
