"""Routes of the contacts function, one module per resource."""
