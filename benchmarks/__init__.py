"""Speed measurements (`make bench`); each prints a table and writes results/<name>.json."""
