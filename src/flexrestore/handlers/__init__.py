"""Lambda entry points. Thin: parse the event, call the domain, shape the answer."""
