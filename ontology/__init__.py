"""The shipped ontology: Turtle files users edit (package data)."""
