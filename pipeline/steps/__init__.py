"""One module per pipeline step; each works as plain functions, without luigi."""
