"""The HTTP service: predictions for uploaded images under a memory budget."""
