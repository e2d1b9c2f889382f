"""The gateway's search domain: request checks and paging, merging, highlights."""
