"""The web application: a study registry over the record store (see :mod:`allotrack.web.app`)."""
