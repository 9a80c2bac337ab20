"""Named SPARQL queries shipped as package data (one .rq file each)."""
