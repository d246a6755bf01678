"""Run records and their aggregation into the Markdown tables and figures."""
