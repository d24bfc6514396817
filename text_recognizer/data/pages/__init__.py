"""Pages assembled from line crops, and the curriculum that grows them from one line to many."""
